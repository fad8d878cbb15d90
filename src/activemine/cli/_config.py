"""What the long commands share: options grouped in help panels, ``--config FILE``, and the settings used.

* **Help panels.** ``activemine mine --help`` (and ``experiment``, ``clean``,
  ``campaign mine``) lists its options under headings (input, model, strategy,
  HW, near-duplicates, ...). The panel of each option is named once, here, in
  :data:`PANELS`; click's plain help formatter draws them, so ``--help`` stays
  as fast as before (no rich help).
* **--config FILE.** Any option can come from a TOML file (or a JSON file, or
  the metadata of a Parquet batch that ``mine`` wrote): keys are option names
  (``near-duplicates`` or ``near_duplicates``), at the top of the file or in a
  table named after the command (``[mine]``, ``[experiment]``, ``[clean]``,
  ``[campaign.mine]``; a command's table wins over the top). A flag on the
  command line wins over the file; the file wins over the defaults. A key that
  is not an option of the command is an error that names it.
* **Settings used.** :func:`command_settings` returns every option of the
  running command with the value it took (from the command line, the file or
  the default); the commands write it beside their output (Parquet metadata,
  ``results.json``, the campaign's round), and :func:`settings_toml` as a file
  that ``--config`` reads back, so a batch can be reproduced from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import typer.core
import typer.main
from typer import BadParameter

__all__ = [
    "PANELS",
    "SETTINGS_METADATA_KEY",
    "PanelCommand",
    "command_settings",
    "read_config",
    "settings_toml",
    "write_table_with_settings",
]

#: Help panel of each option, by parameter name; options not named here are listed under "Other options".
PANELS: dict[str, tuple[str, ...]] = {
    "Input": (
        "pool",
        "labeled",
        "folder",
        "label_col",
        "id_col",
        "proba_cols",
        "weak_proba_cols",
        "classes",
        "dataset",
        "task",
        "split_col",
        "feature_cols",
        "labeled_size",
        "pool_size",
        "image_col",
        "image_size",
        "image_mode",
        "skip_bad_images",
        "oof_proba_cols",
        "oof_proba_prefix",
        "embeddings",
    ),
    "Strategy": (
        "strategy",
        "strategies",
        "budget",
        "balance",
        "easy_share",
        "committee",
        "committee_size",
        "disagreement",
        "mode",
        "rounds",
        "seeds",
        "overlap",
        "per_item",
    ),
    "Model": ("model", "seed", "n_jobs", "folds"),
    "HW and dirty data": (
        "weak_fraction",
        "weak_trees",
        "dirty_policy",
        "max_dirty",
        "clean_selection",
        "oof_method",
        "policy",
        "rule",
        "max_class_fraction",
        "soft_labels",
    ),
    "Near-duplicates and diversity": (
        "near_duplicates",
        "dedup_col",
        "diversity",
        "clusters",
        "candidate_factor",
        "embedding_cols",
        "embedding_prefix",
        "duplicates",
    ),
    "Simulated annotators": ("noise", "noise_kind", "noise_matrix", "annotators"),
    "Evaluation and stopping": (
        "fpr",
        "full_seeds",
        "eval_repeats",
        "stop_set_size",
        "kappa_threshold",
        "uncertainty_level",
    ),
    "Engine": ("engine", "chunk_size", "ray_address"),
    "Output": ("out", "carry_cols", "quiet"),
}
_PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}
OTHER = "Other options"

#: Key of the settings in a Parquet batch's schema metadata.
SETTINGS_METADATA_KEY = b"activemine.settings"


def _panel(param) -> str:
    return _PANEL_OF.get(param.name, OTHER)


def _load(path: Path) -> dict:
    """The table of settings in ``path``: TOML, JSON, or a Parquet batch's metadata."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict) and isinstance(data.get("settings"), dict):  # an experiment's results.json
                data = data["settings"]
        elif suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
            if SETTINGS_METADATA_KEY not in meta:
                raise BadParameter(f"{str(path)!r} holds no activemine settings in its metadata")
            data = json.loads(meta[SETTINGS_METADATA_KEY])["settings"]
        else:
            import tomllib

            data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise BadParameter(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError and json.JSONDecodeError are ValueErrors
        kind = "JSON" if suffix == ".json" else "TOML"
        raise BadParameter(f"{str(path)!r} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise BadParameter(f"{str(path)!r} must hold a table of settings, got {type(data).__name__}")
    return data


def read_config(path: Path, command, command_path: tuple[str, ...]) -> dict:
    """Option name -> value for ``command`` from the file at ``path`` (see the module docstring).

    ``command_path``: the command's names below ``activemine``, e.g. ``("campaign", "mine")``.
    Raises :class:`BadParameter` naming an unknown key and the keys the command takes.
    """
    data = _load(Path(path))
    section: object = data
    tables = [data]
    for part in command_path:
        section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict):
            tables.append(section)
    options = {p.name: p for p in command.params if p.param_type_name == "option" and p.expose_value}
    commands = {"mine", "experiment", "clean", "campaign"}
    out: dict = {}
    where = f"{path}"
    for table in tables:
        for key, value in table.items():
            name = str(key).replace("-", "_")
            if isinstance(value, dict) and (key in commands or table is not data):
                continue  # another command's table, or a deeper level of this one
            if name not in options:
                known = ", ".join(sorted(n.replace("_", "-") for n in options))
                raise BadParameter(
                    f"unknown key {key!r} in {where}; `activemine {' '.join(command_path)}` takes: {known}"
                )
            if isinstance(value, list):  # a TOML array stands for a comma-separated option value
                value = ",".join(str(v) for v in value)
            out[name] = value
    return out


class _Running:
    """The context of the command being run (one command per process), kept by the ``--config`` callback,
    which runs for every command call, with or without the option."""

    ctx = None


def _apply_config(ctx: typer.Context, value: Path | None) -> None:
    _Running.ctx = ctx
    if value is None or ctx.resilient_parsing:
        return
    path = tuple(ctx.command_path.split()[1:])
    defaults = read_config(Path(value), ctx.command, path)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def _config_option():
    """The ``--config`` option, as typer builds it (eager: read before every other option)."""
    holder = typer.Typer()

    @holder.command()
    def _holder(
        config: Annotated[
            Path | None,
            typer.Option(
                "--config",
                help="TOML file of settings (any option; keys as option names). Flags on the command line win.",
                dir_okay=False,
                is_eager=True,
                callback=_apply_config,
            ),
        ] = None,
    ) -> None:
        pass

    option = typer.main.get_command(holder).params[0]
    option.expose_value = False  # the commands never see it: its values arrive as their defaults
    return option


class PanelCommand(typer.core.TyperCommand):
    """A command whose ``--help`` groups its options in panels and which takes ``--config FILE``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(_config_option())

    def format_options(self, ctx, formatter) -> None:
        arguments, panels = [], {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append(record)
            else:
                panels.setdefault(_panel(param), []).append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        for panel in [*PANELS, OTHER]:
            if panel in panels:
                with formatter.section(f"{panel}" if panel == OTHER else f"{panel} options"):
                    formatter.write_dl(panels[panel])


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def command_settings() -> dict:
    """Every option of the running command -> the value it took (paths as text), in declaration order."""
    ctx = _Running.ctx
    names = [p.name for p in ctx.command.params if p.expose_value]
    return {name: _plain(ctx.params[name]) for name in names if name in ctx.params}


def settings_toml(settings: dict, *, command: str) -> str:
    """``settings`` as a TOML table that ``--config`` reads back (options left unset are left out)."""
    lines = [f"# activemine {command}: the settings of this run; rerun with --config FILE", ""]
    for name, value in settings.items():
        if value is None:
            continue
        lines.append(f"{name.replace('_', '-')} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def write_table_with_settings(table, out: Path, *, command: str) -> list[Path]:
    """Write ``table`` to ``out`` atomically with the settings of the running command: in the Parquet
    schema metadata (``--config OUT`` reads them back), or for a CSV in ``OUT.settings.toml`` beside it."""
    from activemine import __version__
    from activemine.data.tables import table_format, write_table

    settings = command_settings()
    if table_format(out) == "parquet":
        doc = {"command": command, "version": __version__, "settings": settings}
        meta = dict(table.schema.metadata or {})
        meta[SETTINGS_METADATA_KEY] = json.dumps(doc).encode()
        write_table(table.replace_schema_metadata(meta), out)
        return [Path(out)]
    write_table(table, out)
    sidecar = Path(out).with_name(Path(out).name + ".settings.toml")
    tmp = sidecar.with_name(f".{sidecar.name}.tmp")
    try:
        tmp.write_text(settings_toml(settings, command=command))
        tmp.replace(sidecar)
    finally:
        tmp.unlink(missing_ok=True)
    return [Path(out), sidecar]
