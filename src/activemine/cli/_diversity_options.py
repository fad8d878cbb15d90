"""Options for batches without copies, shared by ``mine`` (and any command that mines)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from activemine.errors import InputError

NearDuplicatesOpt = Annotated[
    str | None,
    typer.Option(
        help="Skip rows within RADIUS (embedding distance) of a better selected row: a number, auto "
        "(a quarter of the median nearest-neighbour distance of a seeded sample) or off."
    ),
]
DedupColOpt = Annotated[
    str | None, typer.Option(help="Content-hash column of U: rows with equal hashes are duplicates.")
]
DiversityOpt = Annotated[
    str | None,
    typer.Option(help="clusters: Cluster-Margin (round-robin over k-means clusters of the top candidates) or none."),
]
ClustersOpt = Annotated[int | None, typer.Option(help="Clusters of --diversity clusters (default 1000).")]
CandidateFactorOpt = Annotated[
    float | None,
    typer.Option(help="Candidates kept per unit of quota (>= 1; default 2 for near-duplicates, 5 for clusters)."),
]
EmbeddingColsOpt = Annotated[
    str | None, typer.Option(help="Embedding columns of U, e0,e1,... (or one fixed-size-list column).")
]
EmbeddingPrefixOpt = Annotated[
    str | None, typer.Option(help="Embedding columns of U: every column whose name starts with this.")
]

EmbeddingsFileOpt = Annotated[
    Path | None,
    typer.Option(
        help="A .parquet/.csv of ids (--id-col) and embeddings (every other column, or those --embedding-cols or "
        "--embedding-prefix name in it), joined to U by id (read whole): for --near-duplicates and --diversity."
    ),
]


def diversity_options(*, near_duplicates, dedup_col, diversity, clusters, candidate_factor):
    """The :class:`~activemine.diversity.options.DiversityOptions` of the flags, or None (checked, nothing read)."""
    from activemine.diversity.options import DiversityOptions

    return DiversityOptions.from_cli(
        near_duplicates=near_duplicates,
        dedup_col=dedup_col,
        diversity=diversity,
        clusters=clusters,
        candidate_factor=candidate_factor,
    )


def pool_column_names(path: Path) -> list[str]:
    """Column names of a Parquet file or folder, or of a CSV file's header, without reading data."""
    import pyarrow as pa

    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            with pcsv.open_csv(path) as reader:
                return list(reader.schema.names)
        import pyarrow.parquet as pq

        first = (
            path
            if path.is_file()
            else next(p for p in sorted(path.rglob("*")) if p.suffix.lower() in (".parquet", ".pq"))
        )
        return list(pq.read_schema(first).names)
    except (pa.ArrowInvalid, OSError, StopIteration) as exc:
        raise InputError(f"cannot read the columns of {str(path)!r}: {exc}") from None


def embedding_columns(pool_path: Path, *, cols: str | None, prefix: str | None) -> tuple[str, ...]:
    """The embedding columns named by ``--embedding-cols`` or ``--embedding-prefix`` (checked against U)."""
    if cols and prefix:
        raise InputError("give --embedding-cols or --embedding-prefix, not both")
    if not cols and not prefix:
        return ()
    names = pool_column_names(pool_path)
    if cols:
        wanted = [c.strip() for c in cols.split(",") if c.strip()]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise InputError(f"--embedding-cols names columns {missing} that {str(pool_path)!r} does not have")
        return tuple(wanted)
    found = tuple(c for c in names if c.startswith(prefix))
    if not found:
        raise InputError(f"no column of {str(pool_path)!r} starts with --embedding-prefix {prefix!r}")
    return found


def check_embedding_values(source, chunk_size: int) -> None:
    """Read only U's embedding columns and raise on NaN or infinity (before a model is fitted)."""
    from activemine.data.sources import embedding_matrix

    first = 0
    for table in source.tables(chunk_size):
        try:
            embedding_matrix(table.select(list(source.columns.embedding)), source.columns.embedding, where=source.where)
        except InputError as exc:
            raise InputError(f"{exc} (counted from pool row {first})") from None
        first += table.num_rows
