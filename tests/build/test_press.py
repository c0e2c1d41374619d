"""The print shop's file (NAME.press.pdf): PDF/X-4, CMYK only, bleed, crop marks; read back from real builds."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest
from click.testing import CliRunner
from conftest import MINIMAL_BRAND, REPO, build_ok, copy_sample, pdf_fonts, topic
from PIL import Image

from brochure.base.errors import BrochureError
from brochure.build.run import FAILED, build, build_summary
from brochure.cli.main import cli
from brochure.engine import press
from brochure.project.model import load_project

MM = 72 / 25.4
BLEED_PT = 3 * MM  # 8.504 pt
PROFILE = Path(press.__file__).parent / "profiles" / "Coated_FOGRA39_brochure.icc"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample's brochure built twice: without --print-shop into plain/, with it into press/."""
    root = copy_sample(tmp_path_factory.mktemp("press-sample"))
    plain, pressed = root / "plain", root / "press"
    build_ok(root, plain, names=["brochure"])
    build_ok(root, pressed, names=["brochure"], print_shop=True)
    return plain, pressed


# -- an independent reading of the colours in a PDF ------------------------------------------


def _rgb_space(space: object, resources: object = None) -> bool:
    if isinstance(space, pikepdf.Name):
        if str(space) in ("/DeviceRGB", "/RGB", "/CalRGB"):
            return True
        named = resources.get("/ColorSpace", {}).get(space) if resources is not None else None  # type: ignore[attr-defined]
        return named is not None and _rgb_space(named)
    if isinstance(space, pikepdf.Array) and len(space) >= 2:
        family = str(space[0])
        if family == "/ICCBased":
            return int(space[1].get("/N")) == 3
        if family == "/Indexed":
            return _rgb_space(space[1], resources)
        return family == "/CalRGB"
    return False


def rgb_uses(path: Path) -> list[str]:
    """Every RGB colour operator, colour space and picture in every content stream of the PDF."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()

    def stream(obj: pikepdf.Object, resources: pikepdf.Object, where: str) -> None:
        for item in pikepdf.parse_content_stream(obj):
            if isinstance(item, pikepdf.ContentStreamInlineImage):
                image = item.iimage.obj
                if _rgb_space(image.get("/ColorSpace", image.get("/CS")), resources):
                    found.append(f"{where}: inline RGB picture")
                continue
            op = str(item.operator)
            if op in ("rg", "RG"):
                found.append(f"{where}: {op}")
            elif op in ("cs", "CS") and _rgb_space(item.operands[0], resources):
                found.append(f"{where}: {op} {item.operands[0]}")
        resources_of(resources, where)

    def resources_of(resources: pikepdf.Object, where: str) -> None:
        for name, xobject in resources.get("/XObject", {}).items():
            if xobject.is_indirect and xobject.objgen in seen:
                continue
            seen.add(xobject.objgen)
            if _rgb_space(xobject.get("/Group", {}).get("/CS")):
                found.append(f"{where} {name}: group in RGB")
            if xobject.Subtype == "/Image":
                if _rgb_space(xobject.get("/ColorSpace")):
                    found.append(f"{where} {name}: RGB picture")
            else:
                stream(xobject, xobject.get("/Resources", resources), f"{where} {name}")
        for name, pattern in resources.get("/Pattern", {}).items():
            if int(pattern.get("/PatternType", 0)) == 1:
                stream(pattern, pattern.get("/Resources", resources), f"{where} {name}")
            elif _rgb_space(pattern.get("/Shading", {}).get("/ColorSpace")):
                found.append(f"{where} {name}: RGB gradient")
        for name, shading in resources.get("/Shading", {}).items():
            if _rgb_space(shading.get("/ColorSpace")):
                found.append(f"{where} {name}: RGB gradient")
        for name, state in resources.get("/ExtGState", {}).items():
            mask = state.get("/SMask")
            if isinstance(mask, pikepdf.Dictionary) and "/G" in mask:
                stream(mask.G, mask.G.get("/Resources", resources), f"{where} {name} mask")
        for font in resources.get("/Font", {}).values():
            if font.get("/Subtype") == "/Type3":
                for glyph in font.CharProcs.values():
                    stream(glyph, font.get("/Resources", resources), f"{where} Type 3 glyph")

    with pikepdf.open(path) as pdf:
        for number, page in enumerate(pdf.pages, start=1):
            where = f"page {number}"
            if _rgb_space(page.obj.get("/Group", {}).get("/CS")):
                found.append(f"{where}: group in RGB")
            stream(page, page.Resources, where)
            for annot in page.obj.get("/Annots", []):
                for state in annot.get("/AP", {}).values():
                    forms = [state] if isinstance(state, pikepdf.Stream) else list(state.values())
                    for form in forms:
                        stream(form, form.get("/Resources", page.Resources), f"{where} annotation")
    return found


# -- the press file --------------------------------------------------------------------------


def test_press_file_is_pdf_x4_with_the_shipped_cmyk_output_intent(built):
    _plain, pressed = built
    with pikepdf.open(pressed / "brochure.press.pdf") as pdf:
        assert pdf.pdf_version == "1.6"
        (intent,) = pdf.Root.OutputIntents
        assert intent.S == "/GTS_PDFX"
        assert str(intent.OutputConditionIdentifier) == "FOGRA39"
        profile = intent.DestOutputProfile
        assert int(profile.N) == 4
        data = profile.read_bytes()
        assert data[12:20] == b"prtrCMYK"  # an output profile of CMYK
        assert data == PROFILE.read_bytes()
        assert str(pdf.open_metadata()["pdfxid:GTS_PDFXVersion"]) == "PDF/X-4"
        assert "/StructTreeRoot" in pdf.Root  # still tagged
    fonts = pdf_fonts(pressed / "brochure.press.pdf")
    assert fonts
    assert all(fonts.values()), fonts


def test_profile_licence_is_recorded_beside_it():
    note = (PROFILE.parent / "README.md").read_text()
    assert "zlib" in note
    assert PROFILE.name in note


#: TrimBox to BleedBox, side by side (left, bottom, right, top): 3 mm out on every side, in points.
BLEED_OFFSETS = [-8.504, -8.504, 8.504, 8.504]


def page_boxes(path: Path) -> list[tuple[list[float], list[float], list[float]]]:
    """Each page's TrimBox, BleedBox and MediaBox, in points."""
    with pikepdf.open(path) as pdf:
        return [
            tuple([float(v) for v in page.obj[box]] for box in ("/TrimBox", "/BleedBox", "/MediaBox"))
            for page in pdf.pages
        ]


def bleed_offsets(trim: list[float], bleed: list[float]) -> list[float]:
    return [round(b - t, 3) for t, b in zip(trim, bleed, strict=True)]


def test_every_page_has_trim_and_bleed_boxes_3mm_apart_and_room_for_marks(built):
    _plain, pressed = built
    pages = page_boxes(pressed / "brochure.press.pdf")
    assert len(pages) > 2
    for trim, bleed, media in pages:
        assert bleed_offsets(trim, bleed) == BLEED_OFFSETS
        assert media[0] < bleed[0] - 10
        assert media[2] > bleed[2] + 10
        assert abs((trim[2] - trim[0]) - 612) < 0.01  # letter, as brand.toml says


def test_press_file_has_no_rgb_colour_or_picture_and_the_plain_pdf_does(built):
    plain, pressed = built
    # The scan finds RGB where there is some: the ordinary PDF is RGB throughout.
    assert rgb_uses(plain / "brochure.pdf")
    assert rgb_uses(pressed / "brochure.press.pdf") == []
    assert press.inspect((pressed / "brochure.press.pdf").read_bytes()).rgb == []


def test_crop_marks_are_black_only_and_outside_the_bleed(built):
    _plain, pressed = built
    with pikepdf.open(pressed / "brochure.press.pdf") as pdf:
        for page in pdf.pages:
            bx0, by0, bx1, by1 = (float(v) for v in page.obj.BleedBox)
            mx0, my0, mx1, my1 = (float(v) for v in page.obj.MediaBox)
            depth, marks, colour, points = 0, False, None, []
            for item in pikepdf.parse_content_stream(page):
                op = str(item.operator)
                if op == "q":
                    depth += 1
                elif op == "Q":
                    depth -= 1
                elif op == "BMC" and depth == 0 and str(item.operands[0]) == "/Artifact":
                    marks = True
                elif marks and op in ("K", "RG", "G", "k", "rg", "g", "CS", "SC", "SCN"):
                    colour = (op, [float(v) for v in item.operands])
                elif marks and op in ("m", "l"):
                    points.append(tuple(float(v) for v in item.operands))
            assert colour == ("K", [0, 0, 0, 1])
            assert len(points) == 16  # two lines at each corner
            for x, y in points:
                assert x < bx0 or x > bx1 or y < by0 or y > by1, (x, y)
                assert mx0 < x < mx1
                assert my0 < y < my1


def test_press_file_passes_qpdf_and_renders_with_marks_in_black(built, tmp_path):
    _plain, pressed = built
    path = pressed / "brochure.press.pdf"
    subprocess.run(["qpdf", "--check", str(path)], check=True, capture_output=True)
    subprocess.run(
        ["pdftoppm", "-r", "72", "-f", "1", "-l", "1", "-png", str(path), str(tmp_path / "p")], check=True
    )
    (png,) = tmp_path.glob("p*.png")
    image = Image.open(png).convert("RGB")
    with pikepdf.open(path) as pdf:
        mx0, _my0, _mx1, my1 = (float(v) for v in pdf.pages[0].obj.MediaBox)
        tx0, _ty0, _tx1, ty1 = (float(v) for v in pdf.pages[0].obj.TrimBox)
    # The top-left mark runs up from the trim's left edge, past the bleed: dark and without colour.
    x = round(tx0 - mx0)
    marks = [
        image.getpixel((x + dx, y)) for y in range(0, round(my1 - ty1 - BLEED_PT - 3)) for dx in (-1, 0, 1)
    ]
    darkest = min(marks, key=sum)
    assert sum(darkest) < 3 * 160
    assert max(darkest) - min(darkest) < 40


def test_brochure_pdf_is_the_same_with_print_shop_and_handouts_get_no_press_file(built, tmp_path):
    plain, pressed = built
    assert (plain / "brochure.pdf").read_bytes() == (pressed / "brochure.pdf").read_bytes()
    assert not (plain / "brochure.press.pdf").exists()
    root = copy_sample(tmp_path)
    outcomes = build_ok(root, root / "out", names=["aftercare", "brochure"], print_shop=True)
    assert sorted(p.name for p in (root / "out").glob("*.press.pdf")) == ["brochure.press.pdf"]
    assert outcomes["aftercare"].press_status == ""
    assert outcomes["brochure"].press_status == "built"


def test_press_file_is_the_same_bytes_each_time(built, tmp_path):
    _plain, pressed = built
    root = pressed.parent
    build_ok(root, tmp_path / "again", names=["brochure"], print_shop=True)
    assert (tmp_path / "again" / "brochure.press.pdf").read_bytes() == (
        pressed / "brochure.press.pdf"
    ).read_bytes()


def test_brand_cmyk_values_are_used_exactly_and_greys_print_in_black_only(tmp_path):
    root = copy_sample(tmp_path)
    brand = root / "content" / "brand.toml"
    brand.write_text(brand.read_text() + "\n[colors_cmyk]\nprimary = [100, 45, 0, 35]\n")
    build_ok(root, root / "out", names=["brochure"], print_shop=True)
    fills: set[tuple[float, ...]] = set()
    with pikepdf.open(root / "out" / "brochure.press.pdf") as pdf:
        for page in pdf.pages:
            for item in pikepdf.parse_content_stream(page):
                if str(item.operator) in ("k", "K"):
                    fills.add(tuple(round(float(v), 4) for v in item.operands))
    assert (1.0, 0.45, 0.0, 0.35) in fills  # the brand's primary, as brand.toml says
    # The body text's near-black (#1f1f1f, not set in brand.toml): black ink only, in whole percent.
    text = tuple(v / 100 for v in press.default_cmyk("#1f1f1f"))
    assert text[:3] == (0, 0, 0)
    assert 0.8 < text[3] < 1
    assert text in fills
    assert not any(c and m and y and k for c, m, y, k in fills if k > 0.8)  # no rich black anywhere


def test_a_band_touching_the_trim_edge_runs_into_the_bleed_with_the_press_hook(tmp_path):
    """The brochure's cover band reaches the paper's edge; in the press file, under html.press, it
    runs 3 mm further, into the bleed (brochure.css). Without the hook the bleed stays white."""
    root = copy_sample(tmp_path)

    def cover(out: str) -> Image.Image:
        build_ok(root, root / out, names=["brochure"], print_shop=True)
        path = root / out / "brochure.press.pdf"
        subprocess.run(
            ["pdftoppm", "-r", "72", "-f", "1", "-l", "1", "-png", str(path), str(tmp_path / out)], check=True
        )
        return Image.open(next(tmp_path.glob(f"{out}*.png"))).convert("RGB")

    def primary(pixel: tuple[int, int, int]) -> bool:
        red, green, blue = pixel
        return blue > red + 40  # the band's blue (#1d4f73), not paper

    image = cover("hooked")
    slug = press.SLUG_MM * MM
    middle = round(slug + 306)
    in_bleed = image.getpixel((middle, round(slug - BLEED_PT / 2)))  # the strip above the trim edge
    past_bleed = image.getpixel((middle, round(slug - BLEED_PT - 3)))
    left_bleed = image.getpixel((round(slug - BLEED_PT / 2), round(slug + 10)))
    assert past_bleed == (255, 255, 255)
    assert primary(in_bleed), in_bleed
    assert primary(left_bleed), left_bleed

    # The same band without the hook leaves the bleed white: the hook is what extends it.
    (root / "styles").mkdir()
    (root / "styles" / "brochure.css").write_text(
        '@import url("builtin:brochure.css");\n'
        "html.press .cover-band { margin: 0; padding: 0.75in 0.85in 0.7in; }\n"
    )
    image = cover("plain")
    assert image.getpixel((middle, round(slug - BLEED_PT / 2))) == (255, 255, 255)
    assert primary(image.getpixel((middle, round(slug + 10))))  # the band itself is there


def test_press_file_is_rebuilt_when_its_inputs_change_and_counted(tmp_path):
    root = copy_sample(tmp_path)
    out = root / "out"
    project = load_project(root)
    first = build_summary(project, out, names=["brochure"], print_shop=True)
    assert "print-shop file: 1 rebuilt, 0 up to date" in first.describe()
    again = build_summary(project, out, names=["brochure"], print_shop=True)
    assert "print-shop file: 0 rebuilt, 1 up to date" in again.describe()
    before = (out / "brochure.press.pdf").read_bytes()
    brand = root / "content" / "brand.toml"
    brand.write_text(brand.read_text() + "\n[colors_cmyk]\naccent = [0, 100, 0, 0]\n")
    changed = build_summary(load_project(root), out, names=["brochure"], print_shop=True)
    assert "print-shop file: 1 rebuilt" in changed.describe()
    assert (out / "brochure.press.pdf").read_bytes() != before
    # A build without --print-shop leaves the press file alone.
    plain = build_summary(load_project(root), out)
    assert (out / "brochure.press.pdf").exists()
    assert "print-shop" not in plain.describe()
    # ... and says so when the brochure changed since: the press file is out of date.
    assert not any(w for o in plain.outcomes for w in o.warnings if ".press.pdf" in w)
    brand.write_text(brand.read_text().replace("555-0142", "555-0143"))
    changed = build_summary(load_project(root), out)
    (outcome,) = [o for o in changed.outcomes if o.name == "brochure"]
    assert outcome.status == "built"
    assert outcome.warnings == [
        "brochure.press.pdf is from before this change: run 'brochure build --print-shop' "
        "before you send it to the print shop"
    ]


def test_a_failed_press_step_leaves_the_old_press_file_and_writes_the_pdf(tmp_path, monkeypatch):
    root = copy_sample(tmp_path)
    out = root / "out"
    build_ok(root, out, names=["brochure"], print_shop=True)
    old_press = (out / "brochure.press.pdf").read_bytes()
    (out / "brochure.pdf").unlink()

    def fault(pdf: bytes, inks: object, document: str = "") -> bytes:
        raise press.PressError("a test fault")

    # The workers are forked from this process, so they finish with the fault.
    monkeypatch.setattr(press, "finish", fault)
    summary = build_summary(load_project(root), out, names=["brochure"], print_shop=True, force=True)
    (outcome,) = summary.outcomes
    assert outcome.status == FAILED
    assert outcome.press_status == FAILED
    assert "print-shop file cannot be made" in str(outcome.error)
    assert (out / "brochure.press.pdf").read_bytes() == old_press
    assert (out / "brochure.pdf").exists()  # the PDF itself is good, and written
    assert not list(out.glob(".*.tmp"))


# -- brochure check --print-shop, and brand.toml ----------------------------------------------


def _photo(width: int, height: int) -> bytes:
    """A real RGB PNG with many colours (a photo, not flat artwork)."""
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 4 % 256, y * 6 % 256, (x * y) % 256) for y in range(height) for x in range(width)])
    data = io.BytesIO()
    image.save(data, format="PNG")
    return data.getvalue()


def test_check_print_shop_names_a_low_resolution_picture_and_fails(make_project):
    root = make_project(
        {
            "content/images/photo.png": _photo(60, 40),
            "content/topics/a.md": topic(
                "Aftercare",
                "![A photo of the clinic](../images/photo.png)\n\nSome text.\n",
                lang="en",
                review_due="2099-01-01",
            ),
        }
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["check", "--print-shop", "--project", str(root)])
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if "photo.png" in line)
    assert "print-shop" in line
    assert "dpi" in line
    assert "brochure" in line
    assert "use a larger picture" in line
    # Without --print-shop, no such check is made.
    plain = runner.invoke(cli, ["check", "--project", str(root)])
    assert "photo.png" not in plain.output


def test_check_print_shop_passes_the_sample(tmp_path):
    root = copy_sample(tmp_path)
    result = CliRunner().invoke(cli, ["check", "brochure", "--print-shop", "--project", str(root)])
    assert result.exit_code == 0, result.output
    assert "print-shop" not in result.output, result.output


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"90 50 0 10"', "'colors_cmyk.primary' must be a list"),
        ("[90, 50, 0]", "'colors_cmyk.primary' must be four numbers"),
        ("[90, 50, 0, 120]", "'colors_cmyk.primary' must be percentages from 0 to 100, not 120"),
        ('[90, "fifty", 0, 10]', "'colors_cmyk.primary' must be a list of"),
    ],
)
def test_a_malformed_cmyk_value_is_a_clear_error(make_project, value, message):
    brand = MINIMAL_BRAND + f"\n[colors_cmyk]\nprimary = {value}\n"
    root = make_project({"content/brand.toml": brand, "content/topics/a.md": topic("A", lang="en")})
    with pytest.raises(BrochureError) as caught:
        load_project(root)
    (problem,) = caught.value.problems
    assert str(problem.file).endswith("brand.toml")
    assert problem.line == MINIMAL_BRAND.count("\n") + 3
    assert message in problem.message
    assert "primary = [92, 62, 28, 12]" in (problem.fix or "")
    result = CliRunner().invoke(cli, ["build", "--print-shop", "--project", str(root)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert message in result.output


def test_default_cmyk_of_the_sample_brand_is_sensible():
    primary = press.default_cmyk("#1d4f73")  # a dark blue: cyan leads, little yellow
    assert primary[0] > primary[1] > primary[2]
    assert press.default_cmyk("#ffffff") == (0, 0, 0, 0)
    assert press.default_cmyk("#000000") == (0, 0, 0, 100)
    assert press.default_cmyk("#808080")[:3] == (0, 0, 0)


def test_inspect_reports_pictures_by_printed_size(tmp_path):
    # A 30 x 30 picture drawn 1 inch wide (72 pt) is 30 dpi; the same drawn 0.1 inch is 300.
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 200))
    image = pikepdf.Stream(pdf, bytes(range(256)) * 10 + bytes(140))  # 30 x 30 grey, all different
    image.Type, image.Subtype, image.Width, image.Height = pikepdf.Name.XObject, pikepdf.Name.Image, 30, 30
    image.ColorSpace, image.BitsPerComponent, image.Interpolate = pikepdf.Name.DeviceGray, 8, True
    page = pdf.pages[0]
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.obj.Contents = pikepdf.Stream(
        pdf, b"q 72 0 0 72 10 10 cm /Im0 Do Q q 7.2 0 0 7.2 100 100 cm /Im0 Do Q"
    )
    data = io.BytesIO()
    pdf.save(data)
    found = press.inspect(data.getvalue())
    assert sorted(round(p.dpi) for p in found.pictures) == [30, 300]
    assert found.no_bleed == [1]
    assert not found.output_intent


def test_the_tri_fold_gets_its_own_press_file(tmp_path):
    """The tri-fold is not a handout: --print-shop makes its press file too, on its landscape sheet."""
    root = tmp_path / "clinic"
    shutil.copytree(REPO / "content", root / "content")
    build_ok(root, root / "out", names=["aftercare-trifold"], print_shop=True)
    path = root / "out" / "aftercare-trifold.press.pdf"
    assert rgb_uses(path) == []
    with pikepdf.open(path) as pdf:
        assert pdf.Root.OutputIntents[0].S == "/GTS_PDFX"
    pages = page_boxes(path)
    assert len(pages) == 2
    for trim, bleed, _media in pages:
        assert bleed_offsets(trim, bleed) == BLEED_OFFSETS
        assert abs((trim[2] - trim[0]) - 792) < 0.01  # Letter, turned sideways
    check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout
    # The cover panel (the brand's blue) and the fold-in's tint run on into the bleed, and no further.
    subprocess.run(["pdftoppm", "-r", "72", "-png", str(path), str(tmp_path / "t")], check=True)
    outside, inside = (Image.open(p).convert("RGB") for p in sorted(tmp_path.glob("t*.png")))
    slug = press.SLUG_MM * MM
    right, top = round(slug + 792 + BLEED_PT / 2), round(slug - BLEED_PT / 2)
    red, _green, blue = outside.getpixel((right, round(slug + 300)))
    assert blue > red + 40  # the cover's blue, right of the trim
    red, _green, blue = outside.getpixel((round(slug + 700), top))
    assert blue > red + 40  # and above it
    assert outside.getpixel((round(slug + 792 + BLEED_PT + 3), round(slug + 300))) == (255, 255, 255)
    assert outside.getpixel((round(slug - BLEED_PT / 2), round(slug + 300))) != (
        255,
        255,
        255,
    )  # fold-in tint
    assert inside.getpixel((right, round(slug + 300))) != (255, 255, 255)  # the fold-in, inside


def test_a_stylesheet_that_takes_the_bleed_away_fails_the_press_file(tmp_path):
    """The check that every page has its bleed can fail: a page laid out without it is refused."""
    root = copy_sample(tmp_path)
    (root / "styles").mkdir()
    (root / "styles" / "brochure.css").write_text(
        '@import url("builtin:brochure.css");\n@page { bleed: 0mm !important; }\n'
    )
    (outcome,) = build(load_project(root), root / "out", names=["brochure"], print_shop=True)
    assert "without the 3 mm bleed a print shop needs" in str(outcome.error)
    assert "remove that rule" in str(outcome.error)
    assert not (root / "out" / "brochure.press.pdf").exists()
