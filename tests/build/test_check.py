"""`brochure check`: each check with a project that fails it and one that passes."""

from __future__ import annotations

import datetime as dt
import json
import re

from click.testing import CliRunner
from conftest import MINIMAL_BRAND, REPO, copy_sample, topic

from brochure.build.check import check_project, contrast_ratio
from brochure.cli.main import cli

FAR = (dt.date.today() + dt.timedelta(days=400)).isoformat()


def good(title: str = "A", body: str = "We are glad you are here.\n", **meta: object) -> str:
    """A topic that passes every check."""
    return topic(title, body, review_due=FAR, **{"lang": "en", **meta})


def findings(report, check: str) -> list[str]:
    return [f"{f.level}: {f.problem}" for f in report.findings if f.check == check]


def run_check(make_project, files: dict[str, str], render: bool = False, name: str = "clinic"):
    return check_project(make_project(files, name=name), render=render)


def test_sample_passes_check_strict():
    result = CliRunner().invoke(cli, ["check", "--strict", "--project", str(REPO)])
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "0 errors, 0 warnings: check passed"
    assert "fits" in result.stdout


def test_config_and_front_matter_problems_are_all_listed(make_project):
    report = run_check(
        make_project,
        {
            "content/topics/a.md": "---\ntitle: A\norder: first\n---\n",
            "content/topics/b.md": "---\nsummary: no title\n---\n",
            "content/brand.toml": MINIMAL_BRAND + '\n[colors]\nprimary = "blue"\n',
        },
    )
    assert findings(report, "config") == [
        "error: content/brand.toml:10: key 'colors.primary' is not a colour: 'blue' (write it like 'primary = \"#1d4f73\"')",
        "error: content/topics/a.md:3: front matter 'order' must be a whole number, not text 'first' (write it like 'order: 3')",
        "error: content/topics/b.md:1: front matter 'title' is required (add 'title: Aftercare')",
    ]
    passing = run_check(make_project, {"content/topics/a.md": good(), "content/topics/b.md": good("B")})
    assert passing.findings == []


def test_unknown_keys_are_warnings(make_project):
    report = run_check(make_project, {"content/topics/a.md": good(colour="red")})
    assert [f.level for f in report.findings] == ["warning"]
    assert "unknown front matter 'colour' is ignored" in str(report.findings[0].problem)


def test_missing_images(make_project):
    report = run_check(make_project, {"content/topics/a.md": good(body="![A photo](../images/none.png)\n")})
    assert findings(report, "images") == [
        "error: content/topics/a.md:7: image '../images/none.png' does not exist "
        "(check the file name; paths are relative to the topic file)"
    ]
    assert (
        run_check(
            make_project, {"content/topics/a.md": good(body="![The logo](../images/logo.svg)\n")}
        ).findings
        == []
    )


def test_images_without_alt_text(make_project):
    report = run_check(make_project, {"content/topics/a.md": good(body="![](../images/logo.svg)\n")})
    assert [f.split(" (")[0] for f in findings(report, "alt-text")] == [
        "error: content/topics/a.md:7: image '../images/logo.svg' has no alt text"
    ]
    decorative = run_check(
        make_project, {"content/topics/a.md": good(body="![decorative](../images/logo.svg)\n")}
    )
    assert decorative.findings == []


def test_heading_levels_that_skip(make_project):
    report = run_check(make_project, {"content/topics/a.md": good(body="## One\n\n#### Three\n")})
    assert findings(report, "headings") == [
        "warning: content/topics/a.md:9: heading 'Three' skips from level 2 to level 4 "
        "(use '### Three', one level below the heading before it)"
    ]
    assert run_check(make_project, {"content/topics/a.md": good(body="## One\n\n### Two\n")}).findings == []


def test_links_to_missing_topics_and_anchors(make_project):
    report = run_check(
        make_project,
        {
            "content/topics/a.md": good(body="See [b](b.md#nope) and [c](c.md).\n"),
            "content/topics/b.md": good("B", body="## Here\n"),
        },
    )
    assert [f.split(" (")[0] for f in findings(report, "links")] == [
        "error: content/topics/a.md:7: link 'b.md#nope' points to a heading that does not exist",
        "error: content/topics/a.md:7: link 'c.md' points to a topic that does not exist",
    ]
    passing = run_check(
        make_project,
        {
            "content/topics/a.md": good(body="See [b](b.md#here).\n"),
            "content/topics/b.md": good("B", body="## Here\n"),
        },
    )
    assert passing.findings == []


def test_review_dates(make_project):
    today = dt.date.today()
    overdue = (today - dt.timedelta(days=1)).isoformat()
    soon = (today + dt.timedelta(days=10)).isoformat()
    report = run_check(
        make_project,
        {
            "content/topics/a.md": topic("A", review_due=overdue),
            "content/topics/b.md": topic("B", review_due=soon),
            "content/topics/c.md": topic("C"),
        },
    )
    assert findings(report, "review") == [
        f"error: content/topics/a.md:3: medical review was due on {overdue} and is overdue "
        "(have the content reviewed, then update reviewed_on and review_due)",
        f"warning: content/topics/b.md:3: medical review is due on {soon}, in 10 days "
        "(plan the review, then update reviewed_on and review_due)",
        "warning: content/topics/c.md:1: has no review_due date (add 'review_due: YYYY-MM-DD' to its front matter)",
    ]
    assert run_check(make_project, {"content/topics/a.md": good()}, name="other").findings == []


HARD = """\
Notwithstanding considerable interindividual variability, pharmacological neuromodulation \
characteristically demonstrates approximately quadrimestrial therapeutic persistence.

Aesthetic practitioners recommend comprehensive consultation regarding contraindications, \
concomitant medications, and anticipated physiological responses.

We are glad you came.
"""


def test_reading_grade_points_at_the_hardest_sentences(make_project):
    report = run_check(make_project, {"content/topics/a.md": good(body=HARD)})
    (finding,) = findings(report, "reading")
    assert re.match(
        r"warning: content/topics/a.md: reads at grade \d+(\.\d)?, above the target of 8; hardest sentences: ",
        finding,
    )
    assert 'line 7: "Notwithstanding considerable' in finding
    assert 'line 9: "Aesthetic practitioners' in finding
    assert "We are glad" not in finding
    assert (
        run_check(
            make_project, {"content/topics/a.md": good(body="We are glad you came. Sit down.\n")}
        ).findings
        == []
    )


def test_reading_grade_target_is_configurable(make_project):
    body = "Your injector should be a licensed medical professional with special training in facial injections.\n"
    assert findings(run_check(make_project, {"content/topics/a.md": good(body=body)}), "reading")
    files = {
        "content/topics/a.md": good(body=body),
        "content/documents.toml": '[checks]\nreading_grade = 14\n\n[[document]]\nname = "{topic}"\n',
    }
    assert findings(run_check(make_project, files, name="relaxed"), "reading") == []


def test_brand_colour_contrast(make_project):
    brand = MINIMAL_BRAND + '\n[colors]\ntext = "#999999"\nprimary = "#bbbbbb"\n'
    report = run_check(make_project, {"content/topics/a.md": good(), "content/brand.toml": brand})
    assert findings(report, "contrast") == [
        "error: content/brand.toml:10: colors.text #999999 on white paper has contrast 2.85:1; body text need at least "
        "4.5:1 (WCAG AA) (choose a darker 'text' colour)",
        "error: content/brand.toml:11: colors.primary #bbbbbb on white paper has contrast 1.92:1; headings need at "
        "least 3:1 (WCAG AA) (choose a darker 'primary' colour)",
        "error: content/brand.toml:10: colors.text #999999 on the 'light' colour has contrast 2.55:1; text in note "
        "boxes need at least 4.5:1 (WCAG AA) (choose a darker 'text' colour)",
    ]
    assert round(contrast_ratio("#000", "#fff"), 1) == 21.0
    assert run_check(make_project, {"content/topics/a.md": good()}).findings == []


def test_page_budget_fits_after_auto_fit_and_does_not_fit(tmp_path):
    from conftest import grow as _grow

    root = copy_sample(tmp_path / "clinic")
    _grow(root / "content/topics/aftercare.md", 0.12)
    _grow(root / "content/topics/results.md", 2.0)
    report = check_project(root, ["aftercare", "results", "what-is-botox"])
    status = {d.name: d.describe() for d in report.documents}
    assert re.fullmatch(r"fits after auto-fit at 1\d(\.\d+)? pt", status["aftercare"])
    assert status["results"] == "does not fit"
    assert status["what-is-botox"] == "fits"
    assert [f.problem.message.split(",")[0] for f in report.findings if f.check == "budget"] == [
        "document 'results' does not fit on 1 page"
    ]
    assert not (root / "out").exists()  # check writes nothing


def test_json_format_and_exit_codes(make_project):
    root = make_project({"content/topics/a.md": topic("A", lang="en")})  # no review_due: a warning only
    runner = CliRunner()
    result = runner.invoke(cli, ["check", "--format", "json", "--project", str(root)])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["ok"], data["errors"], data["warnings"]) == (True, 0, 1)
    assert data["findings"][0] == {
        "level": "warning",
        "check": "review",
        "file": "content/topics/a.md",
        "line": 1,
        "message": "has no review_due date",
        "fix": "add 'review_due: YYYY-MM-DD' to its front matter",
    }
    assert [(d["name"], d["status"], d["pages"]) for d in data["documents"]] == [
        ("a", "fits", 1),
        ("brochure", "fits", 4),
    ]
    strict = runner.invoke(cli, ["check", "--strict", "--project", str(root)])
    assert strict.exit_code == 1
    assert strict.stdout.splitlines()[-1] == "0 errors, 1 warning: check failed"


def test_errors_exit_1_with_a_table(make_project):
    root = make_project({"content/topics/a.md": good(body="[x](javascript:alert(1))\n")})
    result = CliRunner().invoke(cli, ["check", "--project", str(root)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["LEVEL", "CHECK", "WHERE", "PROBLEM"]
    assert lines[1].split()[:3] == ["error", "links", "content/topics/a.md:7"]
    assert lines[-1] == "1 error, 0 warnings: check failed"


def test_build_strict_fails_on_engine_warnings(make_project):
    from brochure.build.run import build
    from brochure.project.model import load_project

    root = make_project(
        {
            "content/topics/a.md": good(),
            "styles/handout.css": '@import url("builtin:handout.css");\np { colour: red; }\n',
        }
    )
    loose = build(load_project(root), root / "out", names=["a"])[0]
    assert loose.error is None
    assert any("colour" in w for w in loose.warnings)
    (root / "out/a.pdf").unlink()
    strict = build(load_project(root), root / "out", names=["a"], strict=True)[0]
    assert "Ignored `colour: red`" in str(strict.error)
    assert str(strict.error).startswith("content/topics/a.md: document 'a': ")
    assert not (root / "out/a.pdf").exists()


def test_lone_surrogate_in_a_title_is_a_message_for_check_and_build(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    (root / "content/topics/x.md").write_text('---\ntitle: "Bad \\uD800 title"\nlang: en\n---\n\nText.\n')
    what = "front matter is not valid YAML: found invalid Unicode character escape code"
    expected = f"content/topics/x.md:2: {what}"
    checked = CliRunner().invoke(cli, ["check", "--project", str(root)])
    assert checked.exit_code == 1, checked.output
    assert re.search(r"content/topics/x\.md:2 +" + re.escape(what), checked.output)
    assert "Traceback" not in checked.output
    built = CliRunner().invoke(cli, ["build", "--project", str(root), "--out", str(tmp_path / "out")])
    assert built.exit_code == 1, built.output
    assert f"Error: {expected}" in built.output
    assert "please report" not in built.output
    assert "documents.toml" not in built.output


def test_white_text_on_the_brand_band_needs_a_dark_enough_primary(make_project):
    # 3.86:1 is enough for headings on white, not for the band's small white text.
    brand = MINIMAL_BRAND + '\n[colors]\nprimary = "#5f86a6"\n'
    report = run_check(make_project, {"content/topics/a.md": good(), "content/brand.toml": brand})
    assert findings(report, "contrast") == [
        "error: content/brand.toml:10: colors.primary #5f86a6 on white text has contrast 3.86:1; white text "
        "on the brand band need at least 4.5:1 (WCAG AA) (choose a darker 'primary' colour)"
    ]
