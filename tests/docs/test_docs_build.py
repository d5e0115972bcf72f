"""The documentation builds without a warning, and the README stays a short, linked front page."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_BYTES = 12 * 1024
# [text](target) outside code; an autolink <http://...> is not relative and not matched.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_site_builds_strict_without_warnings(tmp_path: Path) -> None:
    result = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "adr" / "0001-transactional-outbox" / "index.html").is_file()


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    """The build's link checks are on: a missing page and a missing anchor each fail it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[gone](gone.md) and [there](other.md#nowhere)\n")
    (docs / "other.md").write_text("# Other\n")
    config = (ROOT / "mkdocs.yml").read_text()
    config = re.sub(r"^nav:\n(?:  .*\n)+", "", config, flags=re.MULTILINE)
    (tmp_path / "mkdocs.yml").write_text(config)
    result = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "gone.md" in output
    assert "nowhere" in output


def test_readme_is_short() -> None:
    assert README.stat().st_size <= README_MAX_BYTES


def _relative_links(text: str) -> list[str]:
    prose = FENCE.sub("", text)
    return [
        target
        for target in LINK.findall(prose)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")
    ]


def test_readme_links_resolve() -> None:
    links = _relative_links(README.read_text())
    assert links, "the README links into docs/"
    missing = [link for link in links if not (ROOT / link.split("#")[0]).exists()]
    assert not missing


def test_readme_link_check_sees_a_missing_file() -> None:
    links = _relative_links("[a](docs/nope.md) [b](https://example.com) [c](#x)\n```\n[d](e)\n```")
    assert links == ["docs/nope.md"]
