"""The print-shop file (NAME.press.pdf): PDF/X-4, CMYK only, 3 mm bleed, crop marks outside the bleed.

WeasyPrint lays the document out with a press stylesheet (bleed, the CMYK
output intent, the ``press`` class on <html>) and writes it with its public
``pdf/x-4`` variant. WeasyPrint still writes CSS colours, SVG fills and
pictures in RGB, so the PDF is then finished here with pikepdf:

- every colour operator in RGB, in every content stream (pages, form
  XObjects, tiling patterns, annotations' appearances, Type 3 glyphs), is
  rewritten in DeviceCMYK: the brand's colours by an exact table (brand.toml
  can set their values), greys in black ink only, other colours through the
  press profile; gradients' colours likewise;
- every RGB picture is converted to CMYK through the press profile;
- each page's MediaBox grows to hold crop marks, drawn in black ink only,
  past the 3 mm bleed; TrimBox and BleedBox stay exactly 3 mm apart.

Done on the PDF rather than in CSS (``device-cmyk()``) because colours come
from everywhere (templates, the brand, SVG logos and diagrams, pictures):
rewriting the output catches every one, and `inspect` proves it.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

PROFILE = Path(__file__).parent / "profiles" / "Coated_FOGRA39_brochure.icc"
PROFILE_NAME = "Coated FOGRA39 (brochure, from FOGRA39L.ti3)"
CONDITION = "Offset printing on coated paper, ISO 12647-2:2004/Amd 1 (FOGRA39)"
PDF_VARIANT = "pdf/x-4"
MM = 72 / 25.4
BLEED_MM = 3.0
#: Crop marks start this far past the bleed, and are this long.
MARK_GAP_MM = 2.0
MARK_LENGTH_MM = 5.0
MARK_WIDTH_PT = 0.25
#: The paper beyond the trim edge: bleed, gap, mark, and a little room.
SLUG_MM = BLEED_MM + MARK_GAP_MM + MARK_LENGTH_MM + 1.0
#: A picture printed at less than this many pixels per inch looks soft.
MIN_DPI = 300
#: A picture of at most this many colours is flat artwork (a QR code, a diagram), not a photo.
FLAT_COLOURS = 16

Cmyk = tuple[float, float, float, float]


class PressError(Exception):
    """The press file could not be made (a colour space or picture of a kind it cannot convert)."""

    #: How to put it right, when it is not a colour or a picture.
    fix = ""


def stylesheet() -> str:
    """The press stylesheet: the bleed, the CMYK output intent, and a hook for templates.

    ``html.press`` is set on the root element; ``--press-bleed`` tells a
    template how far a full-width band may run past the trim edge.
    """
    return (
        f"@color-profile device-cmyk {{ src: url('{PROFILE.as_uri()}'); components: c, m, y, k }}\n"
        f"@page {{ bleed: {BLEED_MM:g}mm; marks: none }}\n"
        f"html {{ --press-bleed: {BLEED_MM:g}mm }}\n"
    )


# -- colours -------------------------------------------------------------------


class Inks:
    """RGB to CMYK for the press profile: an exact table first, greys in black only, the rest by ICC."""

    def __init__(self, exact: Mapping[tuple[int, int, int], Cmyk] | None = None) -> None:
        self.exact = dict(exact or {})
        self._found: dict[tuple[int, int, int], Cmyk] = {}

    def cmyk(self, red: float, green: float, blue: float) -> Cmyk:
        """The CMYK (0 to 1) for an RGB colour (0 to 1)."""
        key = tuple(max(0, min(255, round(c * 255))) for c in (red, green, blue))
        rgb: tuple[int, int, int] = (key[0], key[1], key[2])
        if rgb in self.exact:
            return self.exact[rgb]
        if rgb not in self._found:
            self._found[rgb] = convert(rgb)
        return self._found[rgb]


def convert(rgb: tuple[int, int, int]) -> Cmyk:
    """The press profile's CMYK for an sRGB colour: black ink only for a grey."""
    if rgb[0] == rgb[1] == rgb[2]:
        return (0.0, 0.0, 0.0, _black_for_grey(rgb[0]))
    from PIL import Image, ImageCms

    pixel = ImageCms.applyTransform(Image.new("RGB", (1, 1), rgb), _transforms()[0])
    assert pixel is not None
    values = pixel.getpixel((0, 0))
    assert isinstance(values, tuple)
    return tuple(round(v / 255, 4) for v in values)  # type: ignore[return-value]


def default_cmyk(hex_colour: str) -> tuple[int, int, int, int]:
    """A brand colour's CMYK in whole percent, as brochure uses it when brand.toml gives none."""
    return tuple(round(v * 100) for v in convert(rgb_of(hex_colour)))  # type: ignore[return-value]


def rgb_of(hex_colour: str) -> tuple[int, int, int]:
    digits = hex_colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


@cache
def _transforms() -> tuple[Any, Any]:
    """(sRGB to CMYK for flat colours, sRGB to CMYK for pictures), through the press profile."""
    from PIL import ImageCms

    srgb = ImageCms.createProfile("sRGB")
    press = ImageCms.getOpenProfile(str(PROFILE))
    flags = ImageCms.Flags.BLACKPOINTCOMPENSATION
    flat = ImageCms.buildTransform(
        srgb, press, "RGB", "CMYK", ImageCms.Intent.RELATIVE_COLORIMETRIC, flags=flags
    )
    photo = ImageCms.buildTransform(srgb, press, "RGB", "CMYK", ImageCms.Intent.PERCEPTUAL, flags=flags)
    return flat, photo


@cache
def _black_ramp() -> list[float]:
    """L* of black ink alone at 0, 1, ... 255 (of 255) on the press's paper."""
    from PIL import Image, ImageCms

    press = ImageCms.getOpenProfile(str(PROFILE))
    lab = ImageCms.createProfile("LAB")
    to_lab = ImageCms.buildTransform(press, lab, "CMYK", "LAB", ImageCms.Intent.ABSOLUTE_COLORIMETRIC)
    ramp = Image.new("CMYK", (256, 1))
    ramp.putdata([(0, 0, 0, k) for k in range(256)])
    measured = ImageCms.applyTransform(ramp, to_lab)
    assert measured is not None
    return [measured.getpixel((k, 0))[0] * 100 / 255 for k in range(256)]  # type: ignore[index]


def _black_for_grey(level: int) -> float:
    """The black ink (0 to 1) that prints an sRGB grey: its lightness scaled between paper and solid black."""
    if level >= 255:
        return 0.0
    if level <= 0:
        return 1.0
    value = level / 255
    linear = value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
    lightness = 116 * linear ** (1 / 3) - 16 if linear > 0.008856 else 903.3 * linear
    ramp = _black_ramp()
    paper, solid = ramp[0], ramp[255]
    target = solid + (paper - solid) * lightness / 100
    best = min(range(256), key=lambda k: abs(ramp[k] - target))
    return round(best / 255, 4)


# -- the finished file ---------------------------------------------------------


def finish(pdf: bytes, inks: Inks, document: str = "") -> bytes:
    """WeasyPrint's pdf/x-4 output made ready for the press (see the module's notes)."""
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for intent in doc.Root.get("/OutputIntents", []):
            # The registered name of the press condition, which a shop's preflight looks up.
            intent.OutputConditionIdentifier = pikepdf.String("FOGRA39")
            intent.OutputCondition = pikepdf.String(CONDITION)
            intent.RegistryName = pikepdf.String("http://www.color.org")
            intent.Info = pikepdf.String(PROFILE_NAME)
            # The profile as shipped: WeasyPrint embeds littleCMS's re-saving of it, twice the size.
            if "/DestOutputProfile" in intent:
                intent.DestOutputProfile.write(PROFILE.read_bytes())
        _Converter(doc, inks).run()
        for page in doc.pages:
            _add_marks(doc, page)
        _repeatable_id(doc)
        out = io.BytesIO()
        # The file's /ID from its content, so that the same inputs give the same bytes.
        preserve = pikepdf.ObjectStreamMode.preserve
        doc.save(out, deterministic_id=True, compress_streams=True, object_stream_mode=preserve)
    return out.getvalue()


_DOCUMENT_ID = re.compile(rb"xmp\.did:[0-9a-f-]{36}")


def _repeatable_id(doc: Any) -> None:  # noqa: ANN401 - pikepdf.Pdf
    """The XMP DocumentID, which WeasyPrint draws at random for PDF/X, made from the document instead."""
    import pikepdf

    metadata = doc.Root.get("/Metadata")
    if metadata is None:
        return

    digest = hashlib.sha256()
    for obj in doc.objects:
        # Every stream of the document (its pages, fonts, pictures), not those about the file.
        if isinstance(obj, pikepdf.Stream) and obj.get("/Type") not in ("/Metadata", "/XRef", "/ObjStm"):
            digest.update(obj.read_bytes())
    identity = str(uuid.UUID(bytes=digest.digest()[:16], version=4)).encode()
    # The file's permanent identifier too (qpdf keeps the first /ID, and makes the second from the bytes).
    doc.trailer.ID = pikepdf.Array([pikepdf.String(digest.digest()[:16])] * 2)
    metadata.write(_DOCUMENT_ID.sub(b"xmp.did:" + identity, metadata.read_bytes()))


_RGB_NAMES = frozenset({"/DeviceRGB", "/RGB", "/CalRGB"})


class _Converter:
    """Rewrites every RGB colour and picture of a PDF in CMYK."""

    def __init__(self, doc: Any, inks: Inks) -> None:  # noqa: ANN401 - pikepdf.Pdf
        self.doc, self.inks = doc, inks
        self.seen: set[tuple[int, int]] = set()

    def run(self) -> None:
        import pikepdf

        for page in self.doc.pages:
            obj = page.obj
            self._group(obj)
            resources = obj.get("/Resources", pikepdf.Dictionary())
            self._resources(resources)
            streams = obj.get("/Contents")
            if streams is not None:
                page.contents_coalesce()
                self._content(obj.Contents, resources)
            for annot in obj.get("/Annots", []):
                for state in annot.get("/AP", {}).values():
                    forms = [state] if isinstance(state, pikepdf.Stream) else list(state.values())
                    for form in forms:
                        self._form(form, resources)

    def _once(self, obj: Any) -> bool:  # noqa: ANN401
        if not obj.is_indirect:
            return True
        key = obj.objgen
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def _group(self, obj: Any) -> None:  # noqa: ANN401
        """A transparency group blended in RGB is blended in CMYK instead."""
        import pikepdf

        group = obj.get("/Group")
        if group is not None and _rgb_space(group.get("/CS")):
            group.CS = pikepdf.Name.DeviceCMYK

    def _resources(self, resources: Any) -> None:  # noqa: ANN401
        import pikepdf

        for space_name, space in list(resources.get("/ColorSpace", {}).items()):
            if isinstance(space, pikepdf.Array) and str(space[0]) in ("/Indexed", "/Separation", "/DeviceN"):
                self._special_space(space, space_name)
        for xobject in resources.get("/XObject", {}).values():
            if not self._once(xobject):
                continue
            subtype = xobject.get("/Subtype")
            if subtype == "/Image":
                self._image(xobject)
            elif subtype == "/Form":
                self._form(xobject, resources, checked=True)
        for pattern in resources.get("/Pattern", {}).values():
            if not self._once(pattern):
                continue
            if int(pattern.get("/PatternType", 0)) == 1:
                self._form(pattern, resources, checked=True)
            elif "/Shading" in pattern:
                self._shading(pattern.Shading)
        for shading in resources.get("/Shading", {}).values():
            if self._once(shading):
                self._shading(shading)
        for state in resources.get("/ExtGState", {}).values():
            mask = state.get("/SMask")
            if isinstance(mask, pikepdf.Dictionary) and "/G" in mask and self._once(mask.G):
                self._form(mask.G, resources, checked=True)
            backdrop = mask.get("/BC") if isinstance(mask, pikepdf.Dictionary) else None
            if backdrop is not None and len(backdrop) == 3:
                # Only a luminosity mask drawn in RGB has a three-value backdrop.
                mask.BC = pikepdf.Array(_numbers(self.inks.cmyk(*(float(v) for v in backdrop))))
        for font in resources.get("/Font", {}).values():
            if font.get("/Subtype") == "/Type3" and self._once(font):
                glyph_resources = font.get("/Resources", resources)
                self._resources(glyph_resources)
                for glyph in font.get("/CharProcs", {}).values():
                    self._content(glyph, glyph_resources)

    def _form(self, form: Any, parent: Any, checked: bool = False) -> None:  # noqa: ANN401
        if not checked and not self._once(form):
            return
        self._group(form)
        resources = form.get("/Resources", parent)
        if resources is not parent:
            self._resources(resources)
        self._content(form, resources)

    def _special_space(self, space: Any, name: object) -> None:  # noqa: ANN401
        import pikepdf

        family = str(space[0])
        if family == "/Indexed" and _rgb_space(space[1]):
            table = space[3]
            raw = bytes(table.read_bytes() if isinstance(table, pikepdf.Stream) else table)
            out = bytearray()
            for i in range(0, len(raw) - 2, 3):
                out += bytes(round(v * 255) for v in self.inks.cmyk(*(b / 255 for b in raw[i : i + 3])))
            space[1] = pikepdf.Name.DeviceCMYK
            space[3] = pikepdf.String(bytes(out))
        elif family in ("/Separation", "/DeviceN") and _rgb_space(space[2]):
            raise PressError(f"colour space {name} is a spot colour with an RGB alternative")

    def _shading(self, shading: Any) -> None:  # noqa: ANN401
        import pikepdf

        if not _rgb_space(shading.get("/ColorSpace")):
            return
        if int(shading.get("/ShadingType", 0)) not in (1, 2, 3):
            raise PressError("a mesh gradient in RGB")
        shading.ColorSpace = pikepdf.Name.DeviceCMYK
        if "/Background" in shading:
            shading.Background = pikepdf.Array(_numbers(self.inks.cmyk(*map(float, shading.Background))))
        functions = shading.get("/Function")
        if isinstance(functions, pikepdf.Array):
            raise PressError("a gradient with one function per colour")
        self._function(functions)

    def _function(self, function: Any) -> None:  # noqa: ANN401
        import pikepdf

        kind = int(function.get("/FunctionType", -1))
        if kind == 2:
            for key in ("/C0", "/C1"):
                default = [0.0, 0.0, 0.0] if key == "/C0" else [1.0, 1.0, 1.0]
                values = [float(v) for v in function.get(key, default)]
                function[key] = pikepdf.Array(_numbers(self.inks.cmyk(*values)))
            if "/Range" in function:
                function.Range = pikepdf.Array([0, 1] * 4)
        elif kind == 3:
            for part in function.Functions:
                self._function(part)
            if "/Range" in function:
                function.Range = pikepdf.Array([0, 1] * 4)
        else:
            raise PressError(f"a gradient drawn by a type {kind} function")

    def _image(self, image: Any) -> None:  # noqa: ANN401
        import pikepdf
        from PIL import Image, ImageCms

        space = image.get("/ColorSpace")
        if image.get("/ImageMask", False) or not (
            _rgb_space(space)
            or (isinstance(space, pikepdf.Array) and str(space[0]) == "/Indexed" and _rgb_space(space[1]))
        ):
            return
        try:
            picture = pikepdf.PdfImage(image).as_pil_image()
        except Exception as exc:  # noqa: BLE001 - any decoding failure, named
            size = f"{image.get('/Width')} x {image.get('/Height')}"
            raise PressError(f"a picture of {size} pixels that cannot be read: {exc}") from None
        picture = picture.convert("RGB")
        colours: Any = picture.getcolors(maxcolors=FLAT_COLOURS)
        if colours is not None:
            # Flat artwork (a QR code, a diagram): each colour as a vector colour is, greys in black only.
            cmyk = Image.new("CMYK", picture.size)
            table: dict[Any, tuple[int, ...]] = {
                rgb: tuple(round(v * 255) for v in self.inks.cmyk(*(c / 255 for c in rgb)))
                for _n, rgb in colours
            }
            raw = picture.tobytes()
            cmyk.putdata([table[(raw[i], raw[i + 1], raw[i + 2])] for i in range(0, len(raw), 3)])
        else:
            converted = ImageCms.applyTransform(picture, _transforms()[1])
            assert converted is not None
            cmyk = converted
        image.write(zlib.compress(cmyk.tobytes(), 6), filter=pikepdf.Name.FlateDecode)
        image.ColorSpace = pikepdf.Name.DeviceCMYK
        image.BitsPerComponent = 8
        for key in ("/Decode", "/DecodeParms"):
            if key in image:
                del image[key]

    def _content(self, stream: Any, resources: Any) -> None:  # noqa: ANN401
        import pikepdf

        instructions = pikepdf.parse_content_stream(stream)
        out: list[Any] = []
        changed = False
        fill = stroke = False  # whether the current fill / stroke colour space is RGB
        saved: list[tuple[bool, bool]] = []
        for item in instructions:
            if isinstance(item, pikepdf.ContentStreamInlineImage):
                space = item.iimage.obj.get("/ColorSpace", item.iimage.obj.get("/CS"))
                if _rgb_space(space, resources):
                    raise PressError("an inline picture in RGB")
                out.append(item)
                continue
            operands, op = list(item.operands), str(item.operator)
            if op == "q":
                saved.append((fill, stroke))
            elif op == "Q" and saved:
                fill, stroke = saved.pop()
            elif op in ("rg", "RG") and len(operands) == 3:
                operands = _numbers(self.inks.cmyk(*(float(v) for v in operands)))
                op, changed = ("k" if op == "rg" else "K"), True
            elif op in ("cs", "CS") and operands:
                rgb = _rgb_space(operands[0], resources)
                if rgb:
                    operands, changed = [pikepdf.Name.DeviceCMYK], True
                if op == "cs":
                    fill = rgb
                else:
                    stroke = rgb
            elif op in ("sc", "scn", "SC", "SCN"):
                rgb = fill if op in ("sc", "scn") else stroke
                numbers = [v for v in operands if not isinstance(v, pikepdf.Name)]
                if rgb and len(numbers) == 3 and len(operands) == 3:
                    operands, changed = _numbers(self.inks.cmyk(*(float(v) for v in numbers))), True
                elif rgb:
                    raise PressError("a pattern colour in an RGB colour space")
            elif op in ("g", "G", "k", "K"):
                if op in ("g", "k"):
                    fill = False
                else:
                    stroke = False
            out.append(pikepdf.ContentStreamInstruction(operands, pikepdf.Operator(op)))
        if changed:
            stream.write(pikepdf.unparse_content_stream(out))


def _numbers(values: Iterable[float]) -> list[Any]:
    return list(values)


def _add_marks(doc: Any, page: Any) -> None:  # noqa: ANN401
    """Crop marks in black ink at the trim corners, past the bleed; MediaBox grown to hold them."""
    import pikepdf

    x0, y0, x1, y1 = (float(v) for v in page.obj.TrimBox)
    bleed, slug = BLEED_MM * MM, SLUG_MM * MM
    # The layout must have drawn the bleed (the press stylesheet's @page bleed): a page whose
    # MediaBox is smaller would get a BleedBox over nothing but paper.
    m0, n0, m1, n1 = (float(v) for v in page.obj.MediaBox)
    if min(x0 - m0, y0 - n0, m1 - x1, n1 - y1) < bleed - 0.05:
        problem = PressError(f"a page without the {BLEED_MM:g} mm bleed a print shop needs")
        problem.fix = "a stylesheet sets the page's bleed: remove that rule from your styles/"
        raise problem
    page.obj.BleedBox = pikepdf.Array([x0 - bleed, y0 - bleed, x1 + bleed, y1 + bleed])
    page.obj.MediaBox = pikepdf.Array([x0 - slug, y0 - slug, x1 + slug, y1 + slug])
    if "/CropBox" in page.obj:
        del page.obj["/CropBox"]
    near, far = (BLEED_MM + MARK_GAP_MM) * MM, (BLEED_MM + MARK_GAP_MM + MARK_LENGTH_MM) * MM
    lines = []
    for x, sx in ((x0, -1), (x1, 1)):
        for y, sy in ((y0, -1), (y1, 1)):
            lines.append(f"{x + sx * near:.3f} {y:.3f} m {x + sx * far:.3f} {y:.3f} l")
            lines.append(f"{x:.3f} {y + sy * near:.3f} m {x:.3f} {y + sy * far:.3f} l")
    marks = "\n".join(
        [
            "Q",
            "/Artifact BMC q",
            f"0 0 0 1 K {MARK_WIDTH_PT} w 0 J [] 0 d",
            *lines,
            "S Q EMC",
            "",
        ]
    )
    page.contents_add(pikepdf.Stream(doc, b"q\n"), prepend=True)
    page.contents_add(pikepdf.Stream(doc, marks.encode()), prepend=False)
    page.contents_coalesce()


# -- what a print shop would reject --------------------------------------------


@dataclass(frozen=True)
class Placed:
    """A picture as printed: its pixels, the size it is printed at, and the page."""

    page: int
    width: int
    height: int
    width_in: float
    height_in: float
    #: Flat artwork drawn without smoothing (a QR code): prints sharp at any size, needs no 300 dpi.
    crisp: bool = False

    @property
    def dpi(self) -> float:
        return min(self.width / self.width_in, self.height / self.height_in)


@dataclass
class Inspection:
    """What `inspect` found in a press file."""

    output_intent: bool = False
    cmyk_profile: bool = False
    pdfx: bool = False
    rgb: list[str] = None  # type: ignore[assignment]
    no_bleed: list[int] = None  # type: ignore[assignment]
    fonts_not_embedded: list[str] = None  # type: ignore[assignment]
    pictures: list[Placed] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.rgb, self.no_bleed, self.fonts_not_embedded, self.pictures = [], [], [], []


def inspect(pdf: bytes) -> Inspection:
    """Read a press file back as a shop's preflight would: output intent, bleed, RGB, fonts, pictures."""
    import pikepdf

    found = Inspection()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for intent in doc.Root.get("/OutputIntents", []):
            if intent.get("/S") == "/GTS_PDFX":
                found.output_intent = True
                profile = intent.get("/DestOutputProfile")
                found.cmyk_profile = profile is not None and int(profile.get("/N", 0)) == 4
        metadata = doc.open_metadata()
        found.pdfx = str(metadata.get("pdfxid:GTS_PDFXVersion", "")).startswith("PDF/X-4")
        walker = _Walker(found)
        for number, page in enumerate(doc.pages, start=1):
            obj = page.obj
            trim, bleed = obj.get("/TrimBox"), obj.get("/BleedBox")
            if (
                trim is None
                or bleed is None
                or any(
                    abs(abs(float(b) - float(t)) - BLEED_MM * MM) > 0.05
                    for t, b in zip(trim, bleed, strict=True)
                )
            ):
                found.no_bleed.append(number)
            walker.page(number, obj)
    return found


class _Walker:
    """Runs through content streams, tracking the transformation to size each picture as printed."""

    def __init__(self, found: Inspection) -> None:
        self.found = found
        self.fonts: set[tuple[int, int]] = set()

    def page(self, number: int, obj: Any) -> None:  # noqa: ANN401
        import pikepdf

        resources = obj.get("/Resources", pikepdf.Dictionary())
        self.number = number
        if obj.get("/Group") is not None and _rgb_space(obj.Group.get("/CS"), None):
            self._rgb(f"page {number}: transparency blended in RGB")
        self.stream(obj, resources, (1, 0, 0, 1, 0, 0), f"page {number}", page=True)
        for annot in obj.get("/Annots", []):
            for state in annot.get("/AP", {}).values():
                forms = [state] if isinstance(state, pikepdf.Stream) else list(state.values())
                for form in forms:
                    self.stream(form, form.get("/Resources", resources), (1, 0, 0, 1, 0, 0), "an annotation")

    def _rgb(self, what: str) -> None:
        if what not in self.found.rgb:
            self.found.rgb.append(what)

    def stream(self, stream: Any, resources: Any, ctm: tuple, where: str, page: bool = False) -> None:  # noqa: ANN401
        import pikepdf

        self.resources(resources, where)
        if page:
            pikepdf.Page(stream).contents_coalesce()
            content = stream.Contents
        else:
            content = stream
        saved: list[tuple] = []
        for item in pikepdf.parse_content_stream(content):
            if isinstance(item, pikepdf.ContentStreamInlineImage):
                obj = item.iimage.obj
                if _rgb_space(obj.get("/ColorSpace", obj.get("/CS")), resources):
                    self._rgb(f"{where}: an inline picture in RGB")
                continue
            op, operands = str(item.operator), item.operands
            if op == "q":
                saved.append(ctm)
            elif op == "Q" and saved:
                ctm = saved.pop()
            elif op == "cm":
                ctm = _multiply(tuple(float(v) for v in operands), ctm)
            elif op in ("rg", "RG"):
                self._rgb(f"{where}: colours set in RGB ('{op}')")
            elif op in ("cs", "CS") and operands and _rgb_space(operands[0], resources):
                self._rgb(f"{where}: colours set in an RGB colour space")
            elif op == "Do" and operands:
                xobject = resources.get("/XObject", {}).get(operands[0])
                if xobject is None:
                    continue
                if xobject.get("/Subtype") == "/Image":
                    self.picture(xobject, ctm)
                elif xobject.get("/Subtype") == "/Form":
                    matrix = tuple(float(v) for v in xobject.get("/Matrix", [1, 0, 0, 1, 0, 0]))
                    if xobject.get("/Group") is not None and _rgb_space(xobject.Group.get("/CS"), None):
                        self._rgb(f"{where}: a group blended in RGB")
                    self.stream(xobject, xobject.get("/Resources", resources), _multiply(matrix, ctm), where)

    def resources(self, resources: Any, where: str) -> None:  # noqa: ANN401
        for pattern in resources.get("/Pattern", {}).values():
            if int(pattern.get("/PatternType", 0)) == 1:
                self.stream(pattern, pattern.get("/Resources", resources), (1, 0, 0, 1, 0, 0), where)
            elif _rgb_space(pattern.get("/Shading", {}).get("/ColorSpace"), None):
                self._rgb(f"{where}: a gradient in RGB")
        for shading in resources.get("/Shading", {}).values():
            if _rgb_space(shading.get("/ColorSpace"), None):
                self._rgb(f"{where}: a gradient in RGB")
        for font in resources.get("/Font", {}).values():
            if not font.is_indirect or font.objgen in self.fonts:
                continue
            self.fonts.add(font.objgen)
            if not _embedded(font):
                name = str(font.get("/BaseFont", "a font")).lstrip("/")
                if name not in self.found.fonts_not_embedded:
                    self.found.fonts_not_embedded.append(name)

    def picture(self, image: Any, ctm: tuple) -> None:  # noqa: ANN401
        import pikepdf

        space = image.get("/ColorSpace")
        if _rgb_space(space, None) or (
            isinstance(space, pikepdf.Array) and str(space[0]) == "/Indexed" and _rgb_space(space[1], None)
        ):
            self._rgb(f"page {self.number}: a picture in RGB")
        a, b, c, d = ctm[:4]
        width_in, height_in = (a * a + b * b) ** 0.5 / 72, (c * c + d * d) ** 0.5 / 72
        if width_in > 0 and height_in > 0 and not image.get("/ImageMask", False):
            crisp = False
            if not bool(image.get("/Interpolate", False)):
                try:
                    crisp = pikepdf.PdfImage(image).as_pil_image().getcolors(FLAT_COLOURS) is not None
                except Exception:  # noqa: BLE001 - a picture that cannot be read is checked as a photo
                    crisp = False
            self.found.pictures.append(
                Placed(self.number, int(image.Width), int(image.Height), width_in, height_in, crisp)
            )


def _multiply(m: tuple, n: tuple) -> tuple:
    """The matrix m then n (PDF's row-vector convention: m x n)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    )


def _rgb_space(space: Any, resources: Any = None) -> bool:  # noqa: ANN401
    """Whether a colour space (by name, from ``resources``, or inline) is an RGB one."""
    import pikepdf

    if isinstance(space, pikepdf.Name):
        if str(space) in _RGB_NAMES:
            return True
        named = resources.get("/ColorSpace", {}).get(space) if resources is not None else None
        return named is not None and _rgb_space(named, None)
    if isinstance(space, pikepdf.Array) and len(space) >= 2:
        if str(space[0]) == "/ICCBased":
            return int(space[1].get("/N", 0)) == 3
        return str(space[0]) == "/CalRGB"
    return False


def _embedded(font: Any) -> bool:  # noqa: ANN401
    if font.get("/Subtype") == "/Type3":
        return True
    fonts: Iterable[Any] = font.get("/DescendantFonts", [font])
    for part in fonts:
        descriptor = part.get("/FontDescriptor")
        if descriptor is None or not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
            return False
    return True
