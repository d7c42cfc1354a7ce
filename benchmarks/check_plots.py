"""Check that ``dvc plots show`` renders every plot of ``dvc.yaml`` ``plots:`` (issue 4).

Works offline. Two checks, each naming the plot id that fails:

1. **specs**: ``dvc plots show --json <ids>`` gives each top-level plot id of ``dvc.yaml`` a
   vega-lite spec with the title, x field and axis labels of its definition, and data holding
   exactly its y series (file and column), point for point equal to the CSVs in the working tree.
2. **rendering**: the HTML of ``dvc plots show <ids> -o DIR --html-template T`` is loaded in
   headless Chromium. A hook in the template makes vega-embed draw SVG and records, per plot,
   the embed's outcome, the line marks drawn (at least one per series), its title and a legend
   label per series; a full-page screenshot (``--out``) must not be blank, and each chart's box
   must hold ink and pixels in the spec's line colour.

DVC's default template loads vega, vega-lite and vega-embed from a CDN; this one loads local
copies, looked up in ``--vega-dir`` / ``$DVC_PLOTS_VEGA_DIR``, ``./node_modules``, the cache
``~/.cache/denoise-bench/vega`` and the system node/Debian folders. ``--fetch-vega`` fills the
cache from the npm registry (``npm pack``, the versions DVC's template pins). Without local vega
the spec check still runs, the page is still screenshotted, and the exit status is 3.

    python benchmarks/check_plots.py [--out /tmp/dvc_plots_check/dvc_plots.png] [--fetch-vega] [ID ...]

Exit status: 0 all checks passed; 1 a check failed; 2 could not run (no chromium, a dvc command
failed, --vega-dir incomplete); 3 spec checks passed but no local vega to render with.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(tempfile.gettempdir()) / "dvc_plots_check" / "dvc_plots.png"
VEGA_LIBS = ("vega", "vega-lite", "vega-embed")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "denoise-bench" / "vega"
# system node folders, then Debian's node-* and libjs-* packages
SYSTEM_VEGA_DIRS = [
    Path("/usr/local/lib/node_modules"),
    Path("/usr/lib/node_modules"),
    Path("/usr/share/nodejs"),
    Path("/usr/share/javascript"),
]
STATUS_ID = "dvc-plots-check-status"
BUDGET_MS, WIDTH = 10000, 1000  # chromium --virtual-time-budget, window width in px


class CheckError(RuntimeError):
    """The check could not run (as opposed to: it ran and found a problem)."""


@dataclass
class PlotDef:
    id: str
    title: str | None = None
    x: str | None = None
    x_label: str | None = None
    y_label: str | None = None
    y: dict[str, list[str]] = field(default_factory=dict)  # file -> columns

    def short(self, file: str) -> str:
        """``file`` as DVC's data and legend name it: without the y files' common folder."""
        cut = len(os.path.commonpath(list(self.y))) if len(self.y) > 1 else 0
        return file[cut:].strip("/\\")

    @property
    def series(self) -> dict[tuple[str, str], str]:
        """Each (file, column) of ``y``, named as DVC's legend names it: by what varies between
        them (the short file, the column or both, joined by ``::``)."""
        pairs = [(f, c) for f, cols in self.y.items() for c in cols]
        vary = (len(self.y) > 1, len({c for _, c in pairs}) > 1)
        return {
            (f, c): "::".join(p for p, v in zip((self.short(f), c), vary, strict=True) if v) or c
            for f, c in pairs
        }


def load_plot_defs(repo: Path = REPO) -> list[PlotDef]:
    """The top-level ``plots:`` entries of ``dvc.yaml`` that have an id."""
    plots = (yaml.safe_load((Path(repo) / "dvc.yaml").read_text(encoding="utf8")) or {}).get("plots") or []
    defs = []
    for entry in (e for e in plots if isinstance(e, dict)):  # a bare path has no id to check
        for plot_id, props in entry.items():
            props = props or {}
            y = props.get("y") if isinstance(props.get("y"), dict) else {}
            x = props.get("x") if isinstance(props.get("x"), str) else None
            y = {f: [c] if isinstance(c, str) else list(c) for f, c in y.items()}
            defs.append(
                PlotDef(plot_id, props.get("title"), x, props.get("x_label"), props.get("y_label"), y)
            )
    return defs


def div_id(plot_id: str) -> str:
    """The ``<div id>`` DVC gives a plot (dvc_render ``Renderer.remove_special_chars``)."""
    return plot_id.translate({ord(c): "_" for c in r"!@#$%^&*()[]{};,<>?\/:.|`~=_+ "})


def _run_dvc(args: list[str], repo: Path) -> str:
    exe = Path(sys.executable).with_name("dvc")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "dvc"]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([*command, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise CheckError(f"`dvc {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def plots_json(repo: Path, ids: list[str]) -> dict:
    """``dvc plots show --json <ids>``: {"data": {id: [{"type", "content": spec}]}, "errors": [...]}."""
    return json.loads(_run_dvc(["plots", "show", "--json", *ids], repo))


def render_dvc_html(repo: Path, ids: list[str], out_dir: Path, template: Path | None) -> Path:
    """``dvc plots show <ids> -o out_dir [--html-template template]``; returns index.html."""
    args = ["plots", "show", *ids, "-o", str(Path(out_dir).resolve())]
    _run_dvc(args + (["--html-template", str(Path(template).resolve())] if template else []), repo)
    html = Path(out_dir) / "index.html"
    if not html.exists():
        raise CheckError(f"dvc plots show wrote no {html}")
    return html


# 1. specs


def _num(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_shown(plot: PlotDef, shown: dict) -> PlotDef:
    """``plot`` under the name DVC shows it by: ``dvc.yaml::<id>`` once another dvc.yaml in the
    repository (e.g. ``fashion/dvc.yaml``) has plots too."""
    qualified = f"dvc.yaml::{plot.id}"
    data = shown.get("data") or {}
    return dataclasses.replace(plot, id=qualified) if plot.id not in data and qualified in data else plot


def _vega_spec(shown: dict, plot_id: str) -> dict | None:
    entries = [e for e in (shown.get("data") or {}).get(plot_id) or [] if e.get("type") == "vega"]
    return (entries[0].get("content") or {}) if entries else None


def _error(error: dict) -> str:
    return f"{error.get('type')}: {error.get('msg')}"


def check_specs(defs: list[PlotDef], shown: dict, repo: Path = REPO) -> list[str]:
    """Problems with the vega-lite specs of ``dvc plots show --json`` (``shown``), one per line."""
    errors = shown.get("errors") or []
    problems = [f"dvc plots show ({e.get('rev')}): {_error(e)}" for e in errors if not e.get("name")]
    for plot in defs:
        mine = [f"{plot.id}: dvc plots show: {_error(e)}" for e in errors if e.get("name") == plot.id]
        spec = _vega_spec(shown, plot.id)
        rows = ((spec or {}).get("data") or {}).get("values") or []
        problems += mine
        if spec is None and not mine:
            problems.append(f"{plot.id}: no vega spec in `dvc plots show --json`")
        if spec is not None and not rows:
            problems.append(f"{plot.id}: spec holds no data")
        if not rows:
            continue
        title, x_enc = spec.get("title"), (spec.get("encoding") or {}).get("x") or {}
        title = title.get("text") if isinstance(title, dict) else title
        for what, got, want in (
            ("title", title, plot.title),
            ("x field", x_enc.get("field"), plot.x),
            ("x label", x_enc.get("title"), plot.x_label),
        ):
            if want and got != want:
                problems.append(f"{plot.id}: {what} {got!r}, dvc.yaml says {want!r}")
        if plot.y_label and plot.y_label not in json.dumps(spec.get("layer", spec)):
            problems.append(f"{plot.id}: y label {plot.y_label!r} missing from the spec")
        # Each row belongs to the series whose file and column it names (DVC leaves out what does not vary).
        series, points, unexpected = plot.series, {}, set()
        for row in rows:
            hits = [
                (f, c)
                for f, c in series
                if row.get("field", c) == c and row.get("filename", plot.short(f)) == plot.short(f)
            ]
            if len(hits) != 1:
                unexpected.add("::".join(str(row.get(k)) for k in ("filename", "field") if k in row))
                continue
            y = row.get("dvc_inferred_y_value", row.get(hits[0][1]))
            points.setdefault(hits[0], {})[_num(row.get(plot.x)) if plot.x else None] = _num(y)
        missing = [name for key, name in series.items() if key not in points]
        if plot.y and (missing or unexpected):
            problems.append(f"{plot.id}: series missing {missing}, unexpected {sorted(unexpected)}")
        if not (plot.x and plot.y):
            continue
        for file, cols in plot.y.items():  # every (x, column) point of the CSV, with the same value
            if not (Path(repo) / file).exists():
                problems.append(f"{plot.id}: {file} does not exist")
                continue
            with open(Path(repo) / file, newline="", encoding="utf8") as handle:
                csv_rows = list(csv.DictReader(handle))
            bad = []
            for csv_row, col in ((r, c) for r in csv_rows for c in cols):
                x, want = _num(csv_row.get(plot.x)), _num(csv_row.get(col))
                have = points.get((file, col), {}).get(x, "missing")
                if have == "missing" or want is None or have is None or not math.isclose(want, have):
                    bad.append(f"{col}@{plot.x}={x}: {have} != {want}")
            if bad:
                problems.append(f"{plot.id}: {len(bad)} point(s) differ from {file}: {'; '.join(bad[:3])}")
    return problems


# local vega


def find_vega(vega_dir: Path | None = None, repo: Path = REPO, roots: list[Path] | None = None):
    """Local vega, vega-lite and vega-embed builds, {lib: file}, or None if any is missing.

    Each is taken from the first folder that has it (``roots``, by default: ``vega_dir``,
    $DVC_PLOTS_VEGA_DIR, ``<repo>/node_modules``, the --fetch-vega cache, the system folders),
    in the npm layout (``vega/build/vega.min.js``) or flat (``vega.min.js``).
    """
    if roots is None:
        explicit = [Path(p) for p in (vega_dir, os.environ.get("DVC_PLOTS_VEGA_DIR")) if p]
        roots = [*explicit, Path(repo) / "node_modules", CACHE_DIR, *SYSTEM_VEGA_DIRS]
    found = {}
    for lib in VEGA_LIBS:
        names = [f"{sub}{lib}{ext}" for sub in (f"{lib}/build/", f"{lib}/", "") for ext in (".min.js", ".js")]
        hit = next((Path(r) / n for r in roots for n in names if (Path(r) / n).is_file()), None)
        if hit is not None:
            found[lib] = hit
    return found if len(found) == len(VEGA_LIBS) else None


def fetch_vega(dest: Path = CACHE_DIR) -> dict[str, Path]:
    """Fill ``dest`` with the UMD builds DVC's template pins of vega, vega-lite, vega-embed (npm pack)."""
    npm = shutil.which("npm")
    if npm is None:
        raise CheckError("--fetch-vega needs npm on PATH")
    versions = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}  # if dvc_render is missing
    try:
        from dvc_render.vega import VegaRenderer

        versions |= dict(re.findall(r"npm/(vega(?:-lite|-embed)?)@([\w.\-]+)", VegaRenderer.SCRIPTS))
    except ImportError:
        pass
    specs = [f"{lib}@{versions[lib]}" for lib in VEGA_LIBS]
    with tempfile.TemporaryDirectory() as tmp:
        command = [npm, "pack", *specs, "--pack-destination", tmp, "--silent"]
        proc = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise CheckError(f"npm pack {' '.join(specs)} failed:\n{proc.stderr.strip()}")
        for lib in VEGA_LIBS:
            with tarfile.open(next(Path(tmp).glob(f"{lib}-[0-9]*.tgz"))) as tar:
                member = tar.extractfile(f"package/build/{lib}.min.js")
                target = Path(dest) / lib / "build" / f"{lib}.min.js"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(member.read())
    found = find_vega(roots=[Path(dest)])
    if found is None:
        raise CheckError(f"fetched vega into {dest} but cannot find it there")
    return found


# 2. rendering: the template, Chromium, the recorded page and the screenshot

# Wraps vegaEmbed (SVG instead of DVC's default canvas) and, once every embed has settled,
# records per plot div the outcome and what was drawn in a JSON <script id=STATUS_ID>.
HOOK_JS = r"""
<script>
(function () {
  var status = {plots: {}, errors: []}, pending = [], embed = window.vegaEmbed;
  window.addEventListener('error', function (e) { status.errors.push(String(e.message || e)); });
  window.vegaEmbed = function (el, spec, opts) {
    var plot = status.plots[String(el).replace(/^#/, '')] = {ok: false, error: 'pending'};
    if (typeof embed !== 'function') {
      plot.error = 'vegaEmbed is not loaded (no vega/vega-lite/vega-embed scripts)';
      return Promise.resolve(null);
    }
    var p = Promise.resolve().then(function () {
      return embed(el, spec, Object.assign({renderer: 'svg'}, opts || {}));
    }).then(function (res) { plot.ok = true; plot.error = null; return res; },
            function (err) { plot.error = String(err && err.message || err); return null; });
    pending.push(p);
    return p;
  };
  function all(div, selector) { return Array.prototype.slice.call(div.querySelectorAll(selector)); }
  window.addEventListener('load', function () {
    Promise.all(pending).then(function () {
      Object.keys(status.plots).forEach(function (id) {
        var div = document.getElementById(id), plot = status.plots[id];
        if (!div) return;
        var svg = div.querySelector('svg.marks') || div.querySelector('svg');
        var r = svg && svg.getBoundingClientRect();
        plot.rect = r ? [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height] : null;
        plot.svgs = all(div, 'svg').length;
        plot.lines = all(div, '[class*="mark-line"] path').filter(function (path) {
          var d = (path.getAttribute('d') || '').trim();
          return d !== '' && d !== 'M0,0Z';
        }).length;
        plot.texts = all(div, 'text').map(function (t) { return t.textContent.trim(); });
      });
      status.page = {height: document.documentElement.scrollHeight};
      var out = document.createElement('script');
      out.type = 'application/json';
      out.id = '__STATUS_ID__';
      out.textContent = JSON.stringify(status);
      document.body.appendChild(out);
    });
  });
})();
</script>
""".replace("__STATUS_ID__", STATUS_ID)

TEMPLATE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot (offline check)</title>
__VEGA_SCRIPTS__
__HOOK__
    <style>
        body { background: #ffffff; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""

CDN_SCRIPT = re.compile(
    r"<script[^>]*\ssrc\s*=\s*[\"'][^\"']*/npm/vega(?:-lite|-embed)?@[^\"']*[\"'][^>]*>\s*</script>"
)


def vega_script_tags(vega: dict[str, Path] | None) -> str:
    if not vega:
        return "    <!-- no local vega/vega-lite/vega-embed found: charts cannot be drawn -->"
    return "\n".join(f'    <script src="{vega[lib].resolve().as_uri()}"></script>' for lib in VEGA_LIBS)


def html_template(vega: dict[str, Path] | None) -> str:
    """A ``dvc plots show --html-template`` that loads local vega and records each embed (it has
    no ``{scripts}`` placeholder, so DVC's CDN ``<script>`` tags are left out)."""
    return TEMPLATE.replace("__VEGA_SCRIPTS__", vega_script_tags(vega)).replace("__HOOK__", HOOK_JS)


def instrument_html(text: str, vega: dict[str, Path] | None) -> str:
    """An HTML page of ``dvc plots show`` (any template) with CDN vega swapped for local vega and
    the status hook added; a page made with ``html_template`` is returned unchanged."""
    if STATUS_ID in text:
        return text
    head = vega_script_tags(vega) + "\n" + HOOK_JS
    text = CDN_SCRIPT.sub("", text)
    match = re.search(r"<head[^>]*>", text, flags=re.IGNORECASE)
    return head + text if match is None else text[: match.end()] + "\n" + head + text[match.end() :]


def find_chromium() -> str | None:
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
    return next((path for path in map(shutil.which, names) if path), None)


def _chromium(chromium: str, html: Path, extra: list[str], size: tuple[int, int]):
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--hide-scrollbars", "--mute-audio", "--disable-quic",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--force-device-scale-factor=1", "--run-all-compositor-stages-before-draw",
            f"--user-data-dir={profile}", f"--virtual-time-budget={BUDGET_MS}",
            f"--window-size={size[0]},{size[1]}", *extra, Path(html).resolve().as_uri(),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise CheckError(f"chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc


def dump_dom(chromium: str, html: Path) -> str:
    return _chromium(chromium, html, ["--dump-dom"], (WIDTH, 800)).stdout


def screenshot(chromium: str, html: Path, png: Path, size: tuple[int, int]) -> Path:
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    _chromium(chromium, html, [f"--screenshot={png}"], size)
    if not png.exists():
        raise CheckError(f"chromium wrote no screenshot {png}")
    return png


def _drawn(label: str, texts: list[str]) -> bool:
    """``label`` is among the drawn ``texts``, whole or cut short with an ellipsis by vega."""
    return any(t == label or (t.endswith("…") and label.startswith(t[:-1])) for t in texts)


def check_dom(defs: list[PlotDef], dom: str) -> tuple[list[str], dict | None]:
    """Problems with the page Chromium rendered (``dom``, from ``dump_dom``), and the status the
    hook recorded in it."""
    match = re.search(rf'<script[^>]*id="{STATUS_ID}"[^>]*>(.*?)</script>', dom, flags=re.S)
    try:
        status = json.loads(match.group(1)) if match else None
    except json.JSONDecodeError:
        status = None
    problems = (
        [] if status else ["page: the render-status element never appeared (scripts failed or timed out)"]
    )
    status = status or {"plots": {}, "errors": []}
    problems += [f"page: JavaScript error: {err}" for err in status.get("errors", [])]
    for plot in defs:
        div, state = div_id(plot.id), status["plots"].get(div_id(plot.id)) or {}
        lines, texts, want = state.get("lines", 0), state.get("texts") or [], len(plot.series) or 1
        if not re.search(rf'<div[^>]*\sid="{re.escape(div)}"', dom):
            problems.append(f"{plot.id}: no <div id={div!r}> in the page (plot missing from the HTML)")
        elif not state.get("ok"):
            problems.append(f"{plot.id}: vega-embed failed: {state.get('error', 'never called for its div')}")
        elif not state.get("svgs"):
            problems.append(f"{plot.id}: no chart drawn (no <svg> in its div)")
        elif lines == 0 and not any(texts):
            problems.append(f"{plot.id}: chart is empty (no lines, title or legend drawn)")
        else:
            if lines < want:
                problems.append(f"{plot.id}: {lines} line(s) drawn, expected at least {want}")
            if plot.title and not _drawn(plot.title, texts):
                problems.append(f"{plot.id}: title {plot.title!r} not drawn")
            labels = list(plot.series.values()) if len(plot.series) > 1 else []  # one series: no legend
            missing = [label for label in labels if not _drawn(label, texts)]
            if missing:
                problems.append(f"{plot.id}: no legend entry for {missing}")
    return problems, status


def line_colors(spec: dict) -> list[tuple[int, int, int]]:
    """The colours the spec's color scale gives the lines (DVC: one per revision)."""
    scale = ((spec.get("encoding") or {}).get("color") or {}).get("scale") or {}
    hexes = [
        c for c in scale.get("range") or [] if isinstance(c, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", c)
    ]
    return [tuple(bytes.fromhex(c[1:])) for c in hexes]


def check_screenshot(png: Path, boxes: dict[str, list | None], colors: dict[str, list]) -> list[str]:
    """The screenshot is not blank, and each plot's box has ink and pixels of its line colour."""
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    if float(image.std()) < 2.0:
        return [f"screenshot: blank (pixel std {image.std():.2f}) in {png}"]
    height, width, _ = image.shape
    problems = []
    for plot_id, box in boxes.items():
        if not box:
            problems.append(f"{plot_id}: no chart box to look at in the screenshot")
            continue
        x, y, w, h = (int(round(v)) for v in box)
        crop = image[max(y, 0) : min(y + h, height), max(x, 0) : min(x + w, width)]
        if crop.size == 0:
            problems.append(f"{plot_id}: chart box {box} lies outside the screenshot {width}x{height}")
            continue
        ink = float((np.abs(crop - 255).sum(axis=2) > 60).mean())
        if ink < 0.005 or float(crop.std()) < 2.0:
            problems.append(f"{plot_id}: chart area is blank in the screenshot (ink {ink:.4f})")
            continue
        for color in colors.get(plot_id, []):
            # Lines give hundreds of such pixels; the legend's swatch alone is lighter and small.
            near = int((np.abs(crop - np.array(color)).sum(axis=2) < 60).sum())
            if near < 200:
                problems.append(f"{plot_id}: no pixels of line colour #{bytes(color).hex()} ({near})")
    return problems


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    rendered: bool = False  # vega was available, so the rendering was checked
    screenshot: Path | None = None
    html: Path | None = None
    notes: list[str] = field(default_factory=list)


def check_html(html: Path, defs: list[PlotDef], specs: dict, chromium: str, out: Path, vega) -> Report:
    """The rendering check of one plots HTML (instrumented in place if needed)."""
    text = Path(html).read_text(encoding="utf8")
    if STATUS_ID not in text:
        Path(html).write_text(instrument_html(text, vega), encoding="utf8")
    problems, status = check_dom(defs, dump_dom(chromium, html))
    height = int((status.get("page") or {}).get("height") or 0) + 16
    report = Report(
        html=Path(html), screenshot=screenshot(chromium, html, out, (WIDTH, min(max(height, 600), 16000)))
    )
    if vega is None:
        report.notes.append(
            "no local vega/vega-lite/vega-embed: charts could not be drawn, rendering NOT verified "
            f"(screenshot of the page as it is: {report.screenshot}); run with --fetch-vega or --vega-dir"
        )
        return report
    failed = {p.split(":", 1)[0] for p in problems}
    boxes = {d.id: (status["plots"].get(div_id(d.id)) or {}).get("rect") for d in defs if d.id not in failed}
    colors = {d.id: line_colors(_vega_spec(specs, d.id) or {}) for d in defs}
    report.problems = problems + check_screenshot(report.screenshot, boxes, colors)
    report.rendered = True
    return report


def run_check(
    repo: Path = REPO,
    out: Path = DEFAULT_OUT,
    vega_dir: Path | None = None,
    html_dir: Path | None = None,
    chromium: str | None = None,
    ids: list[str] | None = None,
    no_vega: bool = False,
) -> Report:
    """The whole check of ``repo``; ``no_vega`` skips the vega lookup (spec checks only)."""
    repo = Path(repo).resolve()
    defs = load_plot_defs(repo)
    if not defs:
        raise CheckError(f"{repo / 'dvc.yaml'} has no top-level plots with ids")
    unknown = sorted(set(ids or []) - {d.id for d in defs})
    if unknown:
        raise CheckError(f"not plot ids of dvc.yaml: {unknown}")
    defs = [d for d in defs if not ids or d.id in ids]
    chromium = chromium or find_chromium()
    if chromium is None:
        raise CheckError("no chromium on PATH (Debian: apt-get install -y --no-install-recommends chromium)")
    if vega_dir is not None and find_vega(roots=[Path(vega_dir)]) is None:
        raise CheckError(f"--vega-dir {vega_dir}: no vega, vega-lite and vega-embed builds there")
    vega = None if no_vega else find_vega(vega_dir, repo)
    plot_ids = [d.id for d in defs]
    specs = plots_json(repo, plot_ids)
    defs = [as_shown(d, specs) for d in defs]
    spec_problems = check_specs(defs, specs, repo)
    with tempfile.TemporaryDirectory(prefix="dvc-plots-check-") as tmp:
        folder = Path(html_dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "template.html").write_text(html_template(vega), encoding="utf8")
        html = render_dvc_html(repo, plot_ids, folder / "plots", folder / "template.html")
        report = check_html(html, defs, specs, chromium, Path(out), vega)
    report.problems[:0] = spec_problems
    report.html = report.html if html_dir else None
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO, help="the DVC repository (default: this one)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"screenshot PNG (default {DEFAULT_OUT})"
    )
    parser.add_argument("--html-dir", type=Path, help="keep the template and the dvc HTML here")
    parser.add_argument("--vega-dir", type=Path, help="folder with vega, vega-lite, vega-embed builds")
    parser.add_argument("--fetch-vega", action="store_true", help=f"npm pack them into {CACHE_DIR} first")
    parser.add_argument("--no-vega", action="store_true", help="do not look for vega: spec checks only")
    parser.add_argument("--chromium", help="the browser binary (default: chromium on PATH)")
    parser.add_argument("ids", nargs="*", help="plot ids to check (default: all of dvc.yaml plots:)")
    args = parser.parse_args(argv)
    try:
        if args.fetch_vega and find_vega(args.vega_dir, args.repo) is None:
            print("fetched " + ", ".join(f"{lib}: {path}" for lib, path in fetch_vega().items()))
        vega = None if args.no_vega else find_vega(args.vega_dir, args.repo)
        print("vega: " + (", ".join(str(vega[lib]) for lib in VEGA_LIBS) if vega else "NOT FOUND"))
        report = run_check(
            args.repo, args.out, args.vega_dir, args.html_dir, args.chromium, args.ids, args.no_vega
        )
    except CheckError as err:
        print(f"check_plots: cannot run: {err}", file=sys.stderr)
        return 2
    for note in report.notes:
        print(f"note: {note}")
    if report.html:
        print(f"html: {report.html}")
    print(f"screenshot: {report.screenshot}")
    if report.problems:
        print(f"FAILED: {len(report.problems)} problem(s):", file=sys.stderr)
        print("\n".join(f"  - {problem}" for problem in report.problems), file=sys.stderr)
        return 1
    if not report.rendered:
        print("specs OK; rendering NOT verified (no local vega)")
        return 3
    print("OK: every plot of dvc.yaml plots: rendered (specs and rendering checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
