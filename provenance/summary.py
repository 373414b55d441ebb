"""Plain-text summaries of a run: the cluster table and the largest trees.

Used for the Prefect artifacts and the CLI's closing summary; kept in the
library so a caller without Prefect gets the same text.
"""

from __future__ import annotations

from collections import defaultdict

import polars as pl


def cluster_table(clusters: pl.DataFrame, limit: int = 50) -> list[dict[str, object]]:
    """The ``limit`` largest multi-document clusters as rows of plain values."""
    top = clusters.filter(pl.col("size") > 1).head(limit)
    return top.select(
        "cluster_id", "size", "origin_id", pl.col("origin_title").str.slice(0, 80), "max_depth",
        pl.col("mean_confidence").round(3), pl.col("share_spun").round(3), pl.col("share_truncated").round(3),
    ).to_dicts()


def tree_lines(documents: pl.DataFrame, edges: pl.DataFrame, cluster_id: str) -> list[str]:
    """One cluster's derivation tree as indented lines, origin first."""
    members = documents.filter(pl.col("cluster_id") == cluster_id)
    cluster_edges = edges.filter(pl.col("cluster_id") == cluster_id)
    children: dict[str, list[dict]] = defaultdict(list)
    for edge in cluster_edges.sort("child_id").iter_rows(named=True):
        children[edge["parent_id"]].append(edge)
    titles = dict(zip(members["doc_id"].to_list(), members["title"].to_list()))
    lines: list[str] = []
    origin = members.filter(pl.col("is_origin"))["doc_id"].to_list()
    stack: list[tuple[str, int, dict | None]] = [(d, 0, None) for d in reversed(origin)]
    while stack:
        doc, level, edge = stack.pop()
        title = (titles.get(doc) or "")[:70]
        if edge is None:
            lines.append(f"{doc}  [origin]  {title}")
        else:
            lines.append(
                f"{'    ' * level}└─ {doc}  [{edge['change_kind']}, conf {edge['confidence']:.2f}, "
                f"kept {edge['kept']}/{edge['parent_tokens']}]  {title}"
            )
        for edge_ in reversed(children.get(doc, [])):
            stack.append((edge_["child_id"], level + 1, edge_))
    return lines


def largest_trees_markdown(documents: pl.DataFrame, clusters: pl.DataFrame, edges: pl.DataFrame, limit: int = 5) -> str:
    """Markdown with the ``limit`` largest derivation trees."""
    parts = ["# Largest derivation trees", ""]
    top = clusters.filter(pl.col("size") > 1).head(limit)
    if top.is_empty():
        return "# Largest derivation trees\n\nNo document has a copy in this run."
    for row in top.iter_rows(named=True):
        parts.append(f"## {row['cluster_id']} ({row['size']} documents)")
        parts.append("```")
        parts.extend(tree_lines(documents, edges, row["cluster_id"]))
        parts.append("```")
        parts.append("")
    return "\n".join(parts)
