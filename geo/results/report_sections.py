"""Text sections of the run report: the simulated-imagery banner, definitions, the claims and the estimate tables.

Each section is returned as Markdown lines and as an HTML fragment, so that ``report.md`` and ``report.html`` say
the same thing.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from geo.results.change import MIN_CHECK_POINTS, MIN_MAP_ACCURACY

SIMULATED_BANNER = ("SIMULATED IMAGERY — this run was made on simulated Sentinel-2 scenes, not real satellite "
                    "images. Its areas, counts and growth describe a synthetic landscape; they say nothing about "
                    "mining anywhere, and no published claim is judged against them.")


def banner_md(simulated: bool) -> list[str]:
    return [f"> **⚠ {SIMULATED_BANNER}**", ""] if simulated else []


def banner_html(simulated: bool) -> str:
    if not simulated:
        return ""
    return ('<div id="simulated-banner" role="alert" style="background:#b00020;color:#fff;padding:12px 16px;'
            f'font-weight:bold;border-radius:4px;margin:0 0 1em 0">⚠ {html.escape(SIMULATED_BANNER)}</div>')


def definitions(sites, change=None, detect=None) -> list[tuple[str, str]]:
    """(term, definition) pairs for the terms the report uses, with the thresholds behind every flag.

    ``sites``: the run's SiteConfig; ``change``: its ChangeConfig; ``detect``: its DetectConfig (defaults if None).
    """
    from geo.config import ChangeConfig, DetectConfig
    from geo.stages.input_check import UNSURE_SHARE_MAX

    change, detect = change or ChangeConfig(), detect or DetectConfig()
    return [
        ("Footprint", "mapped mining land: leaching ponds plus cleared land (classes 1 + 2 of the class map), in km², "
                      "computed in the tile's UTM zone, summed over polygons: cleared land under "
                      f"{detect.min_area_m2:.0f} m² and ponds under {detect.min_pond_area_m2:.0f} m² are dropped, so "
                      "the sample-based estimate's 'Mapped km²' (every class-map pixel in the AOI) can be slightly "
                      "larger. Footprint that belongs to no site (clearings with no pond near) counts here but not "
                      "in any site or site extent."),
        ("Site", f"a cluster of footprint polygons less than {sites.link_distance_m:.0f} m apart that holds at least "
                 f"{sites.min_ponds} leaching pond(s) and {sites.min_footprint_m2:.0f} m² of footprint. A site keeps "
                 "its id across seasons while its extent overlaps (or lies within the link distance of) its extent "
                 "in the previous season; merges and splits are recorded in change.geojson."),
        ("Site extent", f"the area enclosed by a site ({sites.extent} of its footprint polygons), including the gaps "
                        "between ponds and clearings; always at least the site's footprint."),
        ("Trend", "the footprint change from the previous season: growth or decline when it moves by more than "
                  f"{100 * change.expand_ratio:.0f} %, stable otherwise; uncertain whenever either season has low "
                  f"clear coverage (under {100 * change.min_clear_fraction:.0f} % of the AOI seen clear at least once) "
                  f"or the model was unsure of it (more than {100 * UNSURE_SHARE_MAX:.0f} % of its possible-footprint "
                  "pixels scored below 0.5); no data for a season with no scenes."),
        ("95 % interval", "the range that holds the true value in 95 % of cases under the error model of "
                          "docs/INTERVALS.md (pixel confidence, boundary placement, unobserved pixels; growth from "
                          "the log ratio). Shown as value [low–high]. It does not cover whole sites the detector "
                          "missed or invented; a zero-width interval (e.g. 0.000 [0.000–0.000]) means nothing was "
                          "mapped on fully seen ground, not that the figure is certain."),
    ]


def definitions_md(sites, change=None, detect=None) -> list[str]:
    return ["## Definitions", ""] + [f"- **{t}**: {d}" for t, d in definitions(sites, change, detect)] + [""]


def definitions_html(sites, change=None, detect=None) -> str:
    items = "".join(f"<dt>{html.escape(t)}</dt><dd>{html.escape(d)}</dd>" for t, d in definitions(sites, change, detect))
    return f"<h2>Definitions</h2><dl>{items}</dl>"


#: Percentages above this are shown as "> +10000 %" (the upper end of an interval with almost nothing seen).
PCT_SHOWN_MAX = 1e4


def _num(v, unit: str) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if unit == "%" and v > PCT_SHOWN_MAX:  # an interval too wide to bound anything: say so, not 25 digits
        return f"> +{PCT_SHOWN_MAX:.0f} %"
    return f"{v:+.1f} %" if unit == "%" else f"{v:.3f}"


def claims_rows(claims: pd.DataFrame) -> list[dict[str, str]]:
    """One display row per claim: source and citation, what was claimed, what was measured, verdict and why."""
    rows = []
    for _, c in claims.iterrows():
        measured = "–"
        if c["matched_periods"] != "none":
            measured = (f"{c['measured_from']} → {c['measured_to']} ({c['matched_periods']}): "
                        f"{_num(c['measured_growth_pct'], '%')} [{_num(c['measured_low'], '%')} … "
                        f"{_num(c['measured_high'], '%')}]")
        rows.append({
            "Source": f"{c['publisher']}, “{c['title']}”, {c['date']}, {c['url']}"
                      + (f" [not verified against the publication: {c['unverified']}]"
                         if isinstance(c.get("unverified"), str) and c["unverified"] else ""),
            "Region": f"{c['region']} (run AOI covers {c['aoi_cover_pct']:.2g} %)",
            "Definition": str(c["definition"]).replace("_", " "),
            "Claimed": f"{c['claim']} ({c['claim_period']}; {c['claimed_from']} → {c['claimed_to']})",
            "Measured (95 % interval)": measured,
            "Verdict": c["verdict"] if c["comparable"] else f"not comparable: {c['reason']}",
        })
    return rows


def claims_md(claims: pd.DataFrame) -> list[str]:
    rows = claims_rows(claims)
    if not rows:
        return []
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r[h].replace("|", "/") for h in head) + " |" for r in rows]
    return lines


def claims_html(claims: pd.DataFrame) -> str:
    rows = claims_rows(claims)
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = "".join("<tr>" + "".join(f'<td style="text-align:left">{html.escape(v)}</td>' for v in r.values())
                   + "</tr>" for r in rows)
    return f'<table class="claims"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


CLAIMS_INTRO = ("A claim is judged only when the run's AOI covers most of the claim's region, holds both of its "
                "seasons with enough clear coverage, the imagery is real, and the map has been checked against "
                f"reference labels in both seasons (footprint user's and producer's accuracy at least "
                f"{MIN_MAP_ACCURACY:.1f} from at least {MIN_CHECK_POINTS} footprint points in 'minewatch estimate'). "
                "The verdict compares the claimed growth with the measured growth's 95 % interval: consistent "
                "(inside), below or above.")


#: Columns the estimate section needs from ``estimate.csv``.
ESTIMATE_COLUMNS = ("period", "class", "area_m2", "area_m2_low", "area_m2_high", "users_accuracy",
                    "producers_accuracy")


def read_estimate(run_dir: Path) -> pd.DataFrame | None:
    """``estimate.csv`` of a run folder (written by ``minewatch estimate``), or None.

    An empty, corrupt or incomplete file (an older minewatch wrote an empty one) does not stop the report: its
    section is left out with a warning saying how to write a valid one.
    """
    path = Path(run_dir) / "estimate.csv"
    if not path.exists():
        return None
    try:
        est = pd.read_csv(path)
        missing = [c for c in ESTIMATE_COLUMNS if c not in est.columns]
        if missing:
            raise ValueError(f"it lacks column(s) {', '.join(missing)}")
        for c in ESTIMATE_COLUMNS[2:]:
            est[c] = pd.to_numeric(est[c], errors="raise").astype(float)
        for c in ("map_area_m2", "n_sample", "users_accuracy_se", "producers_accuracy_se"):
            if c in est.columns:
                est[c] = pd.to_numeric(est[c], errors="coerce").astype(float)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        cause = " ".join(str(exc).split())[:200]
        logging.getLogger(__name__).warning(
            "%s cannot be read (%s); the report leaves out the sample-based estimate: rerun 'minewatch estimate %s "
            "--labels SAMPLE.gpkg' to write it again", path, cause, run_dir)
        return None
    return est


def estimate_rows(est: pd.DataFrame) -> list[dict[str, str]]:
    out = []
    for _, r in est.iterrows():
        out.append({"Period": str(r["period"]), "Class": str(r["class"]).replace("_", " "),
                    "Mapped km²": f"{r['map_area_m2'] / 1e6:.3f}" if "map_area_m2" in r else "–",
                    "Estimated km² [95 %]": f"{r['area_m2'] / 1e6:.3f} [{r['area_m2_low'] / 1e6:.3f}–"
                                            f"{r['area_m2_high'] / 1e6:.3f}]",
                    "User's accuracy": _acc(r, "users_accuracy"), "Producer's accuracy": _acc(r, "producers_accuracy"),
                    "Sample n": str(int(r["n_sample"])) if np.isfinite(r.get("n_sample", np.nan)) else "–"})
    return out


def _acc(r, col: str) -> str:
    v, se = r[col], r.get(f"{col}_se", np.nan)
    if not np.isfinite(v):
        return "–"
    return f"{v:.2f} ± {1.96 * se:.2f}" if np.isfinite(se) else f"{v:.2f}"


ESTIMATE_INTRO = ("Error-adjusted areas from a stratified random sample of reference labels (strata = map classes, plus "
                  "background within 20 m of mapped footprint), "
                  "with 95 % intervals, after Olofsson et al. (2014), Remote Sensing of Environment 148: 42–57.")


def estimate_md(est: pd.DataFrame | None, labeller: str = "") -> list[str]:
    if est is None or not len(est):
        return []
    rows = estimate_rows(est)
    head = list(rows[0])
    lines = ["## Good-practice area estimate (sample-based)", "", ESTIMATE_INTRO + (f" {labeller}" if labeller else ""),
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(r[h] for h in head) + " |" for r in rows] + [""]


def estimate_html(est: pd.DataFrame | None, labeller: str = "") -> str:
    if est is None or not len(est):
        return ""
    rows = estimate_rows(est)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return (f"<h2>Good-practice area estimate (sample-based)</h2><p>{html.escape(ESTIMATE_INTRO)} "
            f"{html.escape(labeller)}</p><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _share(part: float, whole: float) -> str:
    """The dropped rules area against the fused footprint, in words."""
    return f"{100 * part / whole:.0f} % of its own {whole / 1e4:.1f} ha" if whole > 0 else "and mapped no footprint"


def rules_growth(summary, checks: dict[str, dict]) -> str:
    """When the first or last season is RULES DISAGREE: the footprint growth with the rules footprint the fused map
    left out counted as mining, beside the reported one (a sensitivity, not a correction); "" otherwise."""
    if summary is None or len(summary) < 2:
        return ""
    first, last = summary.iloc[0], summary.iloc[-1]
    if not any((checks.get(r["period"]) or {}).get("rules_disagree") for r in (first, last)):
        return ""
    vals = [float(r[c]) for r in (first, last) for c in ("footprint_area_m2", "rules_dropped_m2")]
    if not all(np.isfinite(vals)) or vals[0] <= 0:
        return ""
    f0, d0, f1, d1 = vals
    return (f" Counting what the fused map left out as mining, footprint growth {first['period']} → {last['period']} "
            f"would be {100 * ((f1 + d1) / (f0 + d0) - 1):+.1f} % instead of {100 * (f1 / f0 - 1):+.1f} %.")


def model_check_notes(checks: dict[str, dict], periods: list[str], *, model_run: bool = True, summary=None) -> list[str]:
    """Report notes, first in the report and also logged as warnings, from the seasons' model checks
    (:func:`geo.stages.input_check.season_checks`): seasons the model was unsure of, seasons it could not be
    checked for, seasons where the fused map left out much of what the rules find (with :func:`rules_growth` from
    ``summary``), and the input check's findings. See docs/MODEL_CHECKS.md."""
    from geo.stages.input_check import UNSURE_SHARE_MAX

    notes = []
    doubtful = [(p, checks[p]["model_uncertain_share"]) for p in periods if (checks.get(p) or {}).get("model_doubtful")]
    if doubtful:
        notes.append(
            "MODEL UNSURE in " + ", ".join(f"{p} ({100 * s:.1f} %)" for p, s in doubtful)
            + f": more than {100 * UNSURE_SHARE_MAX:.0f} % of the pixels the model scored as possible footprint got a "
            "probability below 0.5. On scenes from generators written blind to minewatch this went with footprint IoU "
            "of 0.2-0.4 instead of 0.6-0.7 (docs/MODEL_CHECKS.md): the imagery is unlike what the model was trained on, "
            "these seasons' areas and any growth from or to them may be off by tens of percent, and claims that need "
            "them are marked not comparable. Check the map against reference labels ('minewatch sample' + "
            "'minewatch estimate') before publishing.")
    disagree = [(p, checks[p]) for p in periods if (checks.get(p) or {}).get("rules_disagree")]
    if disagree:
        notes.append(
            "RULES DISAGREE in " + ", ".join(f"{p} (the rules alone map {c['rules_m2'] / 1e4:.1f} ha; the fused map "
                                             f"left {c['rules_dropped_m2'] / 1e4:.1f} ha of it out, "
                                             f"{_share(c['rules_dropped_m2'], c['footprint_m2'])})" for p, c in disagree)
            + ": the model scored as background most of what the spectral rules find there. That veto is right on "
            "bright fields (real no-mining Virginia: 98 % of the rules' 64 ha left out) and wrong where the model has "
            "not seen such spoil (blind-generator scenes lost up to a third of their true footprint this way); nothing "
            "here tells which. If those pixels are mining, the season's footprint is larger by the area left out. "
            "Compare a run with --method rules, and check the map against reference labels (docs/MODEL_CHECKS.md)."
            + rules_growth(summary, checks))
    if model_run:
        why: dict[str, list[str]] = {}
        for p in periods:
            if (w := (checks.get(p) or {}).get("model_check_unavailable")):
                why.setdefault(w, []).append(p)
        notes += [f"Model self-check not available for {', '.join(ps)}: {w}." for w, ps in why.items()]
    for p in periods:
        for w in (checks.get(p) or {}).get("input_warnings", []):
            notes.append(f"Input check ({p}): {w}; detections may be unreliable.")
    for n in notes:
        logging.getLogger(__name__).warning("%s", n)
    return notes
