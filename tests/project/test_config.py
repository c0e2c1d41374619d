"""The brand config: invalid values fail with file, key, line and fix; unknown keys warn."""

from __future__ import annotations

import pytest
from conftest import MINIMAL_BRAND, REPO

from brochure.base.errors import ConfigError
from brochure.project.config import load_brand, load_documents
from brochure.project.schema import toml_key_lines


def _brand_error(make_project, brand: str, files: dict | None = None) -> list[str]:
    root = make_project({"content/brand.toml": brand, **(files or {})})
    with pytest.raises(ConfigError) as caught:
        load_brand(root)
    return [str(p) for p in caught.value.problems]


def test_sample_brand_loads_with_builtin_font():
    brand, warnings = load_brand(REPO)
    assert warnings == []
    assert brand.clinic_name == "Example Aesthetics Clinic"
    assert brand.font_family == "Lato"
    assert {f.style for f in brand.fonts} == {"regular", "bold", "italic", "bold_italic"}
    assert all(f.path.is_file() for f in brand.fonts)
    assert brand.paper == "letter"


def test_colour_that_is_not_a_colour(make_project):
    assert _brand_error(make_project, MINIMAL_BRAND + '\n[colors]\nprimary = "dark blue"\n') == [
        "content/brand.toml:10: key 'colors.primary' is not a colour: 'dark blue' (write it like 'primary = \"#1d4f73\"')"
    ]


def test_logo_that_does_not_exist_or_lies_outside(make_project, tmp_path):
    assert _brand_error(make_project, MINIMAL_BRAND.replace("images/logo.svg", "images/nope.svg")) == [
        "content/brand.toml:2: 'logo' names a file that does not exist: 'images/nope.svg' "
        "(check the spelling; paths are relative to the content/ folder)"
    ]
    (tmp_path / "outside.svg").write_text("<svg/>")
    assert _brand_error(make_project, MINIMAL_BRAND.replace("images/logo.svg", "../../outside.svg")) == [
        "content/brand.toml:2: 'logo' points outside the project: '../../outside.svg' "
        "(copy the file into clinic/content/ and name it relative to content/)"
    ]


def test_missing_required_keys_are_all_listed(make_project):
    problems = _brand_error(make_project, 'clinic_name = "X"\n')
    assert problems == [
        "content/brand.toml: key 'logo' is required (add 'logo = \"images/logo.svg\"')",
        "content/brand.toml: key 'disclaimer' is required (add 'disclaimer = \"This handout is general information...\"')",
        "content/brand.toml: key 'contact.address' is required (add 'address = \"100 Main Street, Springfield\"')",
        "content/brand.toml: key 'contact.phone' is required (add 'phone = \"555-0142\"')",
    ]


def test_wrong_type_and_bad_choice(make_project):
    problems = _brand_error(
        make_project, MINIMAL_BRAND.replace('clinic_name = "Test Clinic"', 'clinic_name = 5\npaper = "legal"')
    )
    assert problems == [
        "content/brand.toml:1: key 'clinic_name' must be text, not a whole number 5 (write it like 'clinic_name = \"Lakeside Aesthetics\"')",
        "content/brand.toml:2: key 'paper' must be one of letter, a4, not 'legal' (write it like 'paper = \"letter\"')",
    ]


def test_not_toml(make_project):
    assert _brand_error(make_project, 'clinic_name = "unterminated\n') == [
        "content/brand.toml:1: not valid TOML: Illegal character '\\n' "
        "(check quotes and brackets; text values go in double quotes)"
    ]


def test_font_that_is_not_built_in_and_has_no_files(make_project):
    assert _brand_error(make_project, MINIMAL_BRAND + '\n[font]\nfamily = "Comic Sans"\n') == [
        "content/brand.toml:10: font family 'Comic Sans' is not built in, and no font files are given "
        '(use family = "Lato", or put the font\'s files in content/fonts/ and add regular = "fonts/...ttf" under [font])'
    ]


def test_own_font_files_are_used(make_project):
    from brochure.base.paths import default_font_dir

    regular = (default_font_dir() / "Lato-Light.ttf").read_bytes()
    root = make_project(
        {
            "content/brand.toml": MINIMAL_BRAND
            + '\n[font]\nfamily = "House Sans"\nregular = "fonts/House-Regular.ttf"\n',
            "content/fonts/House-Regular.ttf": regular,
        }
    )
    brand, _ = load_brand(root)
    assert brand.font_family == "House Sans"
    assert [(f.style, f.path.name) for f in brand.fonts] == [("regular", "House-Regular.ttf")]


def test_unknown_keys_warn(make_project):
    root = make_project(
        {
            "content/brand.toml": MINIMAL_BRAND.replace(
                "[contact]", 'colour = "red"\n\n[contact]\nfax = "555-0101"'
            )
        }
    )
    _, warnings = load_brand(root)
    assert [str(w).split(" (")[0] for w in warnings] == [
        "content/brand.toml:5: unknown key 'colour' is ignored",
        "content/brand.toml:8: unknown key 'contact.fax' is ignored",
    ]


def test_documents_config_problems(make_project):
    root = make_project(
        {
            "content/documents.toml": '[[document]]\nname = "bad name!"\n\n[[document]]\nkind = "poster"\n',
        }
    )
    with pytest.raises(ConfigError) as caught:
        load_documents(root)
    assert [str(p) for p in caught.value.problems] == [
        "content/documents.toml:2: document name 'bad name!' cannot be a file name (use letters, digits, '-' and '_' only)",
        "content/documents.toml:4: key 'name' is required (add 'name = \"brochure\"  (or \"{topic}\" for one per topic)')",
        "content/documents.toml:5: key 'kind' must be one of handout, brochure, trifold, not 'poster' (write it like 'kind = \"handout\"')",
    ]


def test_default_documents_without_a_config_file(make_project):
    specs, settings, warnings = load_documents(make_project())
    assert (settings.body_floor_pt, settings.reading_grade, settings.review_warning_days) == (11.0, 8.0, 30)
    assert [(s.name, s.kind, s.pages) for s in specs] == [
        ("{topic}", "handout", 1),
        ("brochure", "brochure", None),
    ]
    assert warnings == []


def test_toml_key_lines():
    text = 'a = 1\n[t]\nb = 2\n[[d]]\nname = "x"\n[[d]]\nname = "y"\n'
    assert toml_key_lines(text) == {
        "a": 1,
        "t": 2,
        "t.b": 3,
        "d.0": 4,
        "d.0.name": 5,
        "d.1": 6,
        "d.1.name": 7,
    }


def test_toml_has_no_aliases_but_deep_nesting_and_size_are_refused(make_project):
    deep = MINIMAL_BRAND + "tags = " + "[" * 5000 + "]" * 5000 + "\n"
    assert _brand_error(make_project, deep) == [
        "content/brand.toml: not valid TOML: lists or tables are nested too deeply (use plain 'key = value' lines)"
    ]
    huge = MINIMAL_BRAND + "# " + "x" * 300_000 + "\n"
    assert _brand_error(make_project, huge) == [
        "content/brand.toml: is too large for a settings file (300,162 bytes; at most 256 KB) "
        "(keep only the settings in it; see README.md)"
    ]


def test_config_text_that_cannot_be_printed_is_refused(make_project):
    brand = MINIMAL_BRAND.replace('"General information only."', '"General \\u0007 information."')
    assert _brand_error(make_project, brand) == [
        "content/brand.toml:3: key 'disclaimer' holds a character that cannot be printed (U+0007) "
        "(delete it and retype the text around it; escapes like \\uD800 or \\u0007 are not allowed)"
    ]


def test_page_budgets_above_the_cap_are_errors_in_the_documents_file(make_project):
    root = make_project(
        {
            "content/documents.toml": (
                '[[document]]\nname = "brochure"\nkind = "brochure"\nmax_pages = 101\n\n'
                '[[document]]\nname = "book"\nkind = "brochure"\npages = 500\n'
            )
        }
    )
    with pytest.raises(ConfigError) as caught:
        load_documents(root)
    assert [str(p) for p in caught.value.problems] == [
        "content/documents.toml:4: key 'max_pages' must be at most 100 (brochure makes no longer PDF), not 101 "
        "(write it like 'max_pages = 16')",
        "content/documents.toml:9: key 'pages' must be at most 100 (brochure makes no longer PDF), not 500 "
        "(write it like 'pages = 1')",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "2",
            "content/brand.toml:10: key 'print.safe_margin_in' must be between 0 and 1 (inches), not 2 "
            "(write it like 'safe_margin_in = 0.25')",
        ),
        (
            '"wide"',
            "content/brand.toml:10: key 'print.safe_margin_in' must be a number, not text 'wide' "
            "(write it like 'safe_margin_in = 0.25')",
        ),
    ],
)
def test_safe_margin_is_checked(make_project, value, expected):
    assert _brand_error(make_project, MINIMAL_BRAND + f"\n[print]\nsafe_margin_in = {value}\n") == [expected]


def test_safe_margin_defaults_to_a_quarter_inch(make_project):
    assert load_brand(make_project())[0].safe_margin_in == 0.25
    brand = MINIMAL_BRAND + "\n[print]\nsafe_margin_in = 0.5\n"
    assert load_brand(make_project({"content/brand.toml": brand}))[0].safe_margin_in == 0.5
