"""mkdocs hook: pages generated at every build, so they cannot drift from what they describe.

- reference/config.md: one table per typed config class (key, type, default and the comment
  written beside the field in the source), the config groups and their options as found in
  configs/, and the shipped YAML of the blocks that are read as plain mappings.
- reference/cli.md: each command's `--help`, from the parsers the commands themselves parse with
  (bench/cli/parsers.py).
- changelog.md: CHANGELOG.md as it is.
- links from a page to a repository file outside docs/ (`[the server](../bench/local_server.py)`,
  which work on GitHub) become the file's path in code type, since the site does not hold the
  file; a link to a file that exists nowhere is left for the strict build to reject.
- getting-started.md: its `<!-- README walkthrough -->` line is replaced by the README's
  walkthrough block (the one tests/test_readme_walkthrough.py runs).

Nothing here is written to disk or committed, so the pages cannot drift from the code.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # tools/ lives beside the package, not in it

from tools.docs_reference import (  # noqa: E402
    cli_reference_markdown,
    config_reference_markdown,
    readme_walkthrough,
)

log = logging.getLogger("mkdocs.hooks.reference")


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    pages = {
        "reference/config.md": config_reference_markdown(REPO / "configs"),
        "reference/cli.md": cli_reference_markdown(),
        "changelog.md": (REPO / "CHANGELOG.md").read_text(encoding="utf-8"),
    }
    for uri, text in pages.items():
        if files.get_file_from_path(uri) is not None:
            raise RuntimeError(f"docs/{uri} exists on disk: it is generated; delete the file")
        files.append(File.generated(config, uri, content=text))
    return files


WALKTHROUGH_MARK = "<!-- README walkthrough -->"


_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")


def _repository_file_links(markdown: str, page_path: Path) -> str:
    docs = REPO / "docs"

    def replace(match: re.Match[str]) -> str:
        target = match["target"]
        if "://" in target or target.startswith(("/", "mailto:")):
            return match[0]
        resolved = (page_path.parent / target).resolve()
        if resolved.is_relative_to(docs) or not resolved.is_file() or not resolved.is_relative_to(REPO):
            return match[0]
        path = resolved.relative_to(REPO).as_posix()
        text = match["text"]
        return f"`{path}`" if text.strip("`") == path else f"{text} (`{path}`)"

    return _LINK.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    markdown = _repository_file_links(markdown, REPO / "docs" / page.file.src_uri)
    if WALKTHROUGH_MARK not in markdown:
        return markdown
    block = readme_walkthrough((REPO / "README.md").read_text(encoding="utf-8"))
    return markdown.replace(WALKTHROUGH_MARK, "```bash\n" + block + "\n```")
