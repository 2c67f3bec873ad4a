"""The run report: Markdown and a self-contained offline HTML page, with charts and a map image."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import geopandas as gpd
import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from geo.fsutil import atomic_path, write_text  # noqa: E402
from geo.results.change import headline_caveats  # noqa: E402
from geo.grid import GeoGrid  # noqa: E402

_FMT = {
    "footprint_area_m2": lambda v: f"{v / 1e6:.3f}", "pond_area_m2": lambda v: f"{v / 1e6:.3f}",
    "cleared_area_m2": lambda v: f"{v / 1e6:.3f}", "site_extent_m2": lambda v: f"{v / 1e6:.3f}",
    "clear_fraction": lambda v: f"{v:.2f}",
}
_SHOW = [("period", "Period"), ("footprint_area_m2", "Footprint km²"), ("pond_area_m2", "Ponds km²"),
         ("cleared_area_m2", "Cleared km²"), ("site_count", "Sites"), ("site_extent_m2", "Site extent km²"),
         ("clear_fraction", "Clear fraction"), ("footprint_growth_pct", "Footprint growth %"),
         ("site_count_growth_pct", "Site growth %"), ("trend", "Trend")]


def _with_interval(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with each value that has a 95 % interval shown as ``value [low–high]`` (text)."""
    df = summary.copy()
    for col in [c for c, _ in _SHOW]:
        lo, hi = f"{col}_low", f"{col}_high"
        if col in df and lo in df and hi in df:
            df[col] = [f"{_fmt(col, v)} [{_fmt(col, a)}–{_fmt(col, b)}]" if isinstance(v, (int, float, np.number))
                       and np.isfinite(v) else _fmt(col, v) for v, a, b in zip(summary[col], df[lo], df[hi])]
    return df


def _fmt(col: str, v) -> str:
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "–"
        if "_pct" in col and v > 1e4:  # geo.results.report_sections.PCT_SHOWN_MAX
            return "> +10000"
        return _FMT[col](v) if col in _FMT else f"{v:+.1f}" if "_pct" in col else f"{v:.3g}"
    return str(v)


def _count(v) -> str:
    """A site count as text; "–" when unknown (a season with no scenes)."""
    return "–" if pd.isna(v) else str(int(v))


def growth_chart(summary: pd.DataFrame, path: str | Path) -> Path:
    """Bar chart of footprint area (ponds + cleared, km²) with the site count on a second axis."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    x = np.arange(len(summary))
    cleared = summary["cleared_area_m2"].to_numpy() / 1e6
    ponds = summary["pond_area_m2"].to_numpy() / 1e6
    low = summary["low_confidence"].to_numpy(dtype=bool)
    ax.bar(x, cleared, color="#e6782a", label="cleared land")
    ax.bar(x, ponds, bottom=cleared, color="#00b4c8", label="leaching ponds")
    for i in np.flatnonzero(low):
        ax.bar(x[i], cleared[i] + ponds[i], fill=False, hatch="//", edgecolor="grey", label="low clear coverage" if i == np.flatnonzero(low)[0] else None)
    ax.set_xticks(x, summary["period"])
    ax.set_ylabel("footprint area (km²)")
    ax.set_xlabel("dry season")
    tot = cleared + ponds
    ax.set_xlim(-0.6, len(summary) - 0.4)  # every season on the axis, also one with no data
    area_hi = summary.get("footprint_area_m2_high", pd.Series(np.nan, index=summary.index)).to_numpy(float) / 1e6
    finite = np.concatenate([tot[np.isfinite(tot)], area_hi[np.isfinite(area_hi)]])
    top = max(float(finite.max()) if len(finite) else 0.0, 1e-6) * 1.2
    ax.set_ylim(0, top)
    for i in np.flatnonzero(~np.isfinite(tot)):
        ax.text(x[i], top * 0.03, "no data\n(no scenes)", ha="center", va="bottom", fontsize=8, color="#555")
    if "footprint_area_m2_low" in summary:
        unbounded = np.isfinite(tot) & np.isposinf(area_hi)
        err = np.vstack([tot - summary["footprint_area_m2_low"].to_numpy(float) / 1e6,
                         np.where(unbounded, top - tot, area_hi - tot)])
        ax.errorbar(x, tot, yerr=np.clip(np.nan_to_num(err, nan=0.0), 0, None), fmt="none", ecolor="#333", capsize=4,
                    label="footprint 95 % interval")
        for i in np.flatnonzero(unbounded):
            ax.annotate("no upper\nbound", (x[i], top), xytext=(6, -4), textcoords="offset points", va="top",
                        fontsize=7, color="#333")
    ax2 = ax.twinx()
    tops = summary.get("site_count_high", summary["site_count"]).to_numpy(float)
    seen_tops = tops[np.isfinite(tops)]  # unknown (no scenes) or unbounded (nothing seen) tops are left out
    count_top = max(1.0, float(seen_tops.max()) if len(seen_tops) else 1.0) * 1.25
    if "site_count_low" in summary:  # an unbounded top is drawn to the axis top; a season with no data is a gap
        ax2.fill_between(x, summary["site_count_low"].to_numpy(float), np.where(np.isposinf(tops), count_top, tops),
                         color="k", alpha=0.12, label="site count 95 % interval")
    ax2.plot(x, summary["site_count"], "k-o", label="mining sites")
    ax2.set_ylabel("site count")
    ax2.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # counts are whole numbers
    ax2.set_ylim(0, count_top)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax.set_title("Mining footprint and site count per dry season")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def map_image(rgb: np.ndarray, grid: GeoGrid, footprints: gpd.GeoDataFrame, path: str | Path, *, title: str = "") -> Path:
    """Footprint polygons over a true-colour composite. ``rgb``: float ``(3, y, x)`` reflectance (B04, B03, B02)."""
    path = Path(path)
    img = np.nan_to_num(np.moveaxis(rgb, 0, -1), nan=0.0)
    nodata = (img <= 0).all(axis=-1)  # no clear observation in the period (stored as 0 / NaN)
    scale = float(np.percentile(img[~nodata], 99)) if (~nodata).any() else 1.0
    img = np.clip(img / max(1e-6, scale), 0, 1) ** 0.8
    img[nodata] = 0.82  # light grey, not black: "not seen", not "dark ground"
    left, bottom, right, top = grid.bounds
    fig, ax = plt.subplots(figsize=(7, 7 * grid.height / max(grid.width, 1)), dpi=110)
    ax.imshow(img, extent=(left, right, bottom, top))
    fp = footprints.to_crs(grid.crs) if len(footprints) else footprints
    if len(fp):
        fp[fp["class"] == 1].boundary.plot(ax=ax, color="#ff8c00", linewidth=0.7)
        fp[fp["class"] == 2].plot(ax=ax, color="#00e5ff", edgecolor="#003c50", linewidth=0.3)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="#00e5ff", edgecolor="#003c50", label="leaching pond"),
               Patch(facecolor="none", edgecolor="#ff8c00", label="cleared land (outline)")]
    if nodata.any():
        handles.append(Patch(facecolor=(0.82, 0.82, 0.82), edgecolor="grey", label="no clear observation"))
    ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.85)
    ax.set_title(title or "Footprints over the composite")
    ax.set_xlabel(f"easting (m, {grid.crs.to_string()})")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#|~])")


def md_escape(text: str) -> str:
    """``text`` as literal Markdown inline text: one line, HTML-significant characters as entities, Markdown
    punctuation backslash-escaped (an AOI named ``<script>`` or ``[x](javascript:…)`` stays plain text)."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_table(df: pd.DataFrame, cols: list[tuple[str, str]]) -> str:
    cols = [(c, n) for c, n in cols if c in df.columns]
    lines = ["| " + " | ".join(n for _, n in cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(c, r[c]) for c, _ in cols) + " |")
    return "\n".join(lines)


def _html_table(df: pd.DataFrame, cols: list[tuple[str, str]]) -> str:
    cols = [(c, n) for c, n in cols if c in df.columns]
    head = "".join(f"<th>{html.escape(n)}</th>" for _, n in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c, r[c]))}</td>" for c, _ in cols) + "</tr>" for _, r in df.iterrows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def change_table(changes: pd.DataFrame | None) -> pd.DataFrame:
    """Site change counts per pair of periods (columns ``periods`` and one per change class)."""
    from geo.results.change import CHANGE_CLASSES

    cols = ["periods", *CHANGE_CLASSES]
    if changes is None or not len(changes):
        return pd.DataFrame(columns=cols)
    counts = changes.groupby(["period_from", "period_to"], sort=False)["change"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=list(CHANGE_CLASSES), fill_value=0).reset_index()
    counts.insert(0, "periods", counts["period_from"] + " → " + counts["period_to"])
    return counts[cols]


_CHANGE_COLS = [("periods", "Periods"), ("new", "New"), ("expanded", "Expanded"), ("persisted", "Persisted"),
                ("shrunk", "Shrunk"), ("abandoned", "Abandoned (not found in the later season)"),
                ("unseen_before", "Not seen clear before"), ("unseen_later", "Not seen clear later")]


def write_report(run_dir: str | Path, *, title: str, summary: pd.DataFrame, claims: pd.DataFrame,
                 images: dict[str, Path], notes: list[str], changes: pd.DataFrame | None = None,
                 simulated: bool = False, sites=None, estimate: pd.DataFrame | None = None,
                 map_html: str = "", change=None, detect=None) -> tuple[Path, Path]:
    """Write ``report.md`` and a self-contained ``report.html`` (images inlined) into ``run_dir``.

    ``changes``: optional site change records (``period_from``, ``period_to``, ``change``), counted per period pair.
    ``simulated``: open both with the simulated-imagery banner. ``sites``: the SiteConfig (for the definitions).
    ``estimate``: the sample-based estimate table (``estimate.csv``), shown in its own section when given.
    ``map_html``: the interactive map (:func:`geo.results.webmap.map_html`), placed under "Interactive map".
    ``change``, ``detect``: the run's ChangeConfig and DetectConfig, whose thresholds the definitions state.
    """
    from geo.config import SiteConfig
    from geo.results import report_sections as rs

    sites = sites or SiteConfig()
    run_dir = Path(run_dir)
    ctab = change_table(changes)
    shown = _with_interval(summary)
    last = summary.iloc[-1] if len(summary) else None
    headline = "No periods."
    if last is not None:
        first = summary.iloc[0]
        headline = (f"Footprint {first['period']} → {last['period']}: {_fmt('footprint_area_m2', first['footprint_area_m2'])} → "
                    f"{_fmt('footprint_area_m2', last['footprint_area_m2'])} km², "
                    f"{_fmt('footprint_growth_pct', last['footprint_growth_pct'])} % "
                    f"(95 % interval {_fmt('footprint_growth_pct', last.get('footprint_growth_pct_low', np.nan))} … "
                    f"{_fmt('footprint_growth_pct', last.get('footprint_growth_pct_high', np.nan))} %); "
                    f"sites {_count(first['site_count'])} → {_count(last['site_count'])} "
                    f"({_fmt('site_count_growth_pct', last['site_count_growth_pct'])} %, 95 % interval "
                    f"{_fmt('site_count_growth_pct', last.get('site_count_growth_pct_low', np.nan))} … "
                    f"{_fmt('site_count_growth_pct', last.get('site_count_growth_pct_high', np.nan))} %)")
        for caveat in headline_caveats(summary, (first["period"], last["period"])):  # docs/MODEL_CHECKS.md
            headline += f" — {caveat}"
    labeller = ""
    if estimate is not None and "labelled_by" in estimate and len(estimate):
        labeller = f"Reference labels: {estimate['labelled_by'].iloc[0]}."
    md = [f"# {md_escape(title)}", "", *rs.banner_md(simulated), f"**{headline}**", "", "## Per period", "",
          "Values in brackets are 95 % intervals.", "", _md_table(shown, _SHOW), "",
          "Areas are computed in the tile's UTM zone. A period whose clear fraction is below the threshold is flagged "
          "low confidence; its decreases are reported as uncertain, not as shrinkage.", "",
          *rs.definitions_md(sites, change, detect), *rs.estimate_md(estimate, labeller),
          "## Published claims against this measurement", "", rs.CLAIMS_INTRO, "", *rs.claims_md(claims), ""]
    if len(ctab):
        md += ["## Site changes between periods", "", _md_table(ctab, _CHANGE_COLS), ""]
    if map_html:  # map14
        md += ["## Interactive map", "", "Open `report.html` for the interactive map of every season (works offline).", ""]
    for name, p in images.items():
        md += [f"## {name}", "", f"![{name}]({Path(p).name})", ""]
    md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    md_path = run_dir / "report.md"
    write_text(md_path, "\n".join(md))
    figs = "".join(
        f"<figure><img alt=\"{html.escape(name)}\" src=\"data:image/png;base64,{base64.b64encode(Path(p).read_bytes()).decode()}\">"
        f"<figcaption>{html.escape(name)}</figcaption></figure>" for name, p in images.items())
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #bbb;padding:3px 8px;font-size:13px;text-align:right}}th{{background:#eee}}
figure img{{max-width:100%}}dt{{font-weight:bold}}</style></head><body>{rs.banner_html(simulated)}<h1>{html.escape(title)}</h1>
<p><strong>{html.escape(headline)}</strong></p>
<h2>Per period</h2><p>Values in brackets are 95 % intervals.</p>{_html_table(shown, _SHOW)}{rs.definitions_html(sites, change, detect)}
{rs.estimate_html(estimate, labeller)}
<h2>Published claims against this measurement</h2><p>{html.escape(rs.CLAIMS_INTRO)}</p>{rs.claims_html(claims)}
{f"<h2>Site changes between periods</h2>{_html_table(ctab, _CHANGE_COLS)}" if len(ctab) else ""}
{f"<h2>Interactive map</h2>{map_html}" if map_html else ""}
<h2>Charts and map</h2>{figs}<h2>Notes</h2><ul>{''.join(f'<li>{html.escape(n)}</li>' for n in notes)}</ul></body></html>"""
    html_path = run_dir / "report.html"
    write_text(html_path, page)
    return md_path, html_path
