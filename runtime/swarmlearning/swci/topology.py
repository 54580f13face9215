"""The swarm topology picture behind Swci.plotTopology: LIST NODES rows become a networkx graph
(each SL and SWOP joined to its parent SN), drawn to a PNG with matplotlib's Agg canvas.
networkx and matplotlib are optional and imported only when a picture is asked for."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

COLUMNS = ("NodeType", "HostIP", "Port", "ContainerName", "UUID", "ParentUUID", "i-am-alive")
SN_TYPES = frozenset({"SN", "SENTINEL", "FULLNODE"})
OTHER_COLOUR = "#1f78b4"
DEFAULT_FILE = "swci-topology.png"
INSTALL_HINT = ("plotTopology needs networkx and matplotlib, which are not installed: "
                "pip install networkx matplotlib")


class TopologyDependencyError(ImportError):
    """networkx or matplotlib is missing; the message says what to install."""


def require_plotting() -> None:
    """Fail early, with the pip command, when networkx or matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
        import networkx  # noqa: F401
    except ImportError as exc:
        raise TopologyDependencyError(f"{INSTALL_HINT} ({exc})") from exc


def parse_nodes(lines: Iterable[str]) -> list[dict[str, str]]:
    """One dict per LIST NODES row, keyed by COLUMNS; the header and short lines are skipped.
    The last column (a timestamp) keeps any comma it holds."""
    nodes = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith(COLUMNS[0]):
            continue
        cells = [cell.strip() for cell in text.split(",", len(COLUMNS) - 1)]
        if len(cells) < len(COLUMNS):
            continue
        nodes.append(dict(zip(COLUMNS, cells, strict=True)))
    return nodes


def label_columns(attrs: Sequence[str]) -> list[str]:
    """The extra label columns asked for, in COLUMNS spelling (case does not matter; HPE's docs
    write parentUUID). NodeType and HostIP are always shown, so they are not repeated."""
    by_folded = {column.casefold(): column for column in COLUMNS}
    if isinstance(attrs, str):
        attrs = [attrs]
    chosen = []
    for attr in attrs:
        column = by_folded.get(str(attr).casefold())
        if column is None:
            raise ValueError(f"plotTopology: unknown attribute {attr!r}; choose from "
                             f"{', '.join(COLUMNS)}")
        if column not in ("NodeType", "HostIP") and column not in chosen:
            chosen.append(column)
    return chosen


def build_graph(nodes: Sequence[dict[str, str]], sn_colour: str, swop_colour: str,
                sl_colour: str, extra: Sequence[str] = ()) -> Any:
    """A networkx Graph with one vertex per node (numbered in list order) holding its columns,
    `colour` and `label`, and an edge from each node to the listed node named by its
    ParentUUID."""
    import networkx as nx

    graph = nx.Graph()
    index_of: dict[str, int] = {}
    for ix, node in enumerate(nodes):
        kind = node["NodeType"].upper()
        if kind in SN_TYPES:
            colour, short = sn_colour, "SN"
        elif kind == "SWOP":
            colour, short = swop_colour, "SW"
        elif kind == "SL":
            colour, short = sl_colour, "SL"
        else:
            colour, short = OTHER_COLOUR, node["NodeType"] or "?"
        label = "\n".join([short, node["HostIP"], *(node[column] for column in extra)])
        graph.add_node(ix, **node, colour=colour, label=label)
        if node["UUID"]:
            index_of.setdefault(node["UUID"], ix)
    for ix, node in enumerate(nodes):
        parent = index_of.get(node["ParentUUID"])
        if parent is not None and parent != ix:
            graph.add_edge(parent, ix)
    return graph


def draw_png(graph: Any, path: str | os.PathLike[str]) -> Path:
    """Draw the graph (spring layout, fixed seed) into a PNG file; returns its absolute path."""
    import networkx as nx
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    target = Path(path).expanduser().resolve()
    figure = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_axis_off()
    if graph.number_of_nodes() == 0:
        axes.text(0.5, 0.5, "No swarm nodes registered", ha="center", va="center")
    else:
        layout = nx.spring_layout(graph, k=0.8, seed=7)
        vertices = list(graph.nodes)
        nx.draw_networkx_nodes(graph, layout, ax=axes, nodelist=vertices, node_size=2200,
                               node_color=[graph.nodes[v]["colour"] for v in vertices])
        nx.draw_networkx_edges(graph, layout, ax=axes, edge_color="black")
        nx.draw_networkx_labels(graph, layout, ax=axes, font_size=8,
                                labels={v: graph.nodes[v]["label"] for v in vertices})
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png")
    return target
