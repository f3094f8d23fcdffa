"""Mapping folders read one on top of another: the bundled (or `mappings_dir`) folder first, then one's own.

Each folder may hold `providers/`, `dialects/` and `models/`. A file is known by its kind and name
(`providers/openai.yaml` is the provider `openai`): a later folder's file replaces an earlier one's of
the same name, whole, and `extends` names a provider from any folder. A provider file that extends its
own name extends the file it replaces (an own `acme.yaml` with `extends: acme` changes one thing of
the bundled one); that file is then kept as an abstract base named `acme@1` (its folder's position).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.mapping.compiler import MappingLoadError
from engine.mapping.tree import load_mapping_file
from engine.mapping.yaml_lines import LineDict

__all__ = ["Folders", "as_folders", "find_file", "mapping_files", "provider_trees", "relative_name"]

Folders = tuple[Path, ...]


def as_folders(folders: Path | Sequence[Path]) -> Folders:
    """One folder or several, earliest (lowest precedence) first."""
    return (folders,) if isinstance(folders, Path) else tuple(folders)


def mapping_files(folders: Path | Sequence[Path], kind: str) -> dict[str, Path]:
    """`<folder>/<kind>/*.yaml` of every folder by name; a later folder's file wins. Sorted by name."""
    found: dict[str, Path] = {}
    for folder in as_folders(folders):
        for path in sorted((folder / kind).glob("*.yaml")):
            found[path.stem] = path
    return dict(sorted(found.items()))


def provider_trees(folders: Path | Sequence[Path], problems: list[str] | None = None) -> dict[str, LineDict]:
    """Every provider file's tree by name, a later folder's replacing an earlier one's (or extending it,
    when it extends its own name). With `problems`, a file that cannot be read is reported there and
    left out; without, its MappingLoadError is raised."""
    trees: dict[str, LineDict] = {}
    for position, folder in enumerate(as_folders(folders)):
        for path in sorted((folder / "providers").glob("*.yaml")):
            try:
                tree = load_mapping_file(path)
            except MappingLoadError as exc:
                if problems is None:
                    raise
                problems.append(str(exc))
                continue
            replaced = trees.get(path.stem)
            if replaced is not None:
                _replace(path.stem, tree, replaced, f"{path.stem}@{position}", trees)
            trees[path.stem] = tree
    return dict(sorted(trees.items()))


def _replace(
    stem: str, tree: LineDict, replaced: LineDict, base_name: str, trees: dict[str, LineDict]
) -> None:
    """`tree` takes the place of `replaced`. The default provider stays the default unless `tree` says
    otherwise (prefix-less model strings must not move to another provider because a file was
    replaced). When `tree` extends its own name, `replaced` becomes its abstract base, `base_name`."""
    if "default_provider" in replaced and "default_provider" not in tree:
        tree["default_provider"] = replaced["default_provider"]
    if tree.get("extends") == stem:
        replaced["abstract"] = True
        trees[base_name] = replaced
        tree["extends"] = base_name


def find_file(folders: Path | Sequence[Path], relative: str) -> Path:
    """The last folder's `relative` file that exists (the first folder's path when none has it, so that
    the error names the place it was expected)."""
    ordered = as_folders(folders)
    for folder in reversed(ordered):
        if (folder / relative).is_file():
            return folder / relative
    return ordered[0] / relative


def relative_name(text: str, folders: Path | Sequence[Path]) -> str:
    """`text` with each folder's path cut to its name, for places that must not show the server's
    paths (a readiness detail): `/srv/own/providers/x.yaml:3` -> `own/providers/x.yaml:3`."""
    for folder in sorted(as_folders(folders), key=lambda f: len(str(f)), reverse=True):
        text = text.replace(str(folder), folder.name)
    return text
