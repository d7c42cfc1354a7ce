"""Check that ``dvc plots show`` renders every plot of ``dvc.yaml`` ``plots:`` (issue 4).

Works offline. Three layers of checks, each naming the plot id that fails:

1. **specs**: ``dvc plots show --json <ids>`` returns one vega-lite spec per top-level plot id
   of ``dvc.yaml``, with the title, x field and axis labels of its definition, and data holding
   exactly the y columns listed there, value for value equal to the CSV in the working tree.
2. **DOM**: the HTML of ``dvc plots show <ids> -o DIR --html-template T`` is loaded in headless
   Chromium (``--dump-dom`` after a virtual-time budget). Every plot's ``<div id=...>`` must hold
   a vega chart with no embed error: an ``<svg>`` with line marks (at least one path per y
   column), its title and a legend label for every y column.
3. **screenshot**: a full-page PNG is taken (``--out``) and must not be blank; the box of each
   chart must hold drawn pixels and pixels in the line colour of the spec.

DVC's default HTML template loads vega, vega-lite and vega-embed from a CDN, which cannot load
offline. The template written here loads local copies instead (see ``find_vega``); it also
makes vega-embed draw SVG instead of canvas so the DOM can be inspected, and records each
embed's outcome in a JSON ``<script id="dvc-plots-check-status">`` element.

Local vega is looked up in ``--vega-dir`` / ``$DVC_PLOTS_VEGA_DIR``, ``./node_modules``, the
cache ``~/.cache/denoise-bench/vega`` and the system node/Debian folders. ``--fetch-vega``
fills the cache from the npm registry (``npm pack``, the versions DVC's template pins).
Without local vega, the spec checks still run, the page is still screenshotted, and the exit
status is 3: "rendering not verified".

    python benchmarks/check_plots.py [--out /tmp/dvc_plots_check/dvc_plots.png] [--fetch-vega]

Exit status: 0 all checks passed; 1 a check failed; 2 could not run (no chromium, a dvc command
failed, --vega-dir incomplete); 3 spec checks passed but no local vega to render with.
"""

from __future__ import annotations

import argparse
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
from html.parser import HTMLParser
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(tempfile.gettempdir()) / "dvc_plots_check" / "dvc_plots.png"
VEGA_LIBS = ("vega", "vega-lite", "vega-embed")
# The versions DVC's own HTML template loads from the CDN (dvc_render.vega.VegaRenderer.SCRIPTS);
# read from dvc_render when it is importable, these are the fallback.
DEFAULT_VEGA_VERSIONS = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "denoise-bench" / "vega"
SYSTEM_VEGA_DIRS = (
    Path("/usr/local/lib/node_modules"),
    Path("/usr/lib/node_modules"),
    Path("/usr/share/nodejs"),  # Debian node-* packages
    Path("/usr/share/javascript"),  # Debian libjs-* packages
)
STATUS_ID = "dvc-plots-check-status"
VOID_TAGS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class CheckError(RuntimeError):
    """The check could not run (as opposed to: it ran and found a problem)."""


# --------------------------------------------------------------------------------------------
# dvc.yaml and dvc plots show
# --------------------------------------------------------------------------------------------


@dataclass
class PlotDef:
    id: str
    title: str | None
    x: str | None
    x_label: str | None
    y_label: str | None
    y: dict[str, list[str]] = field(default_factory=dict)  # file -> columns

    @property
    def y_fields(self) -> list[str]:
        return [col for cols in self.y.values() for col in cols]


def div_id(plot_id: str) -> str:
    """The ``<div id>`` DVC gives a plot (dvc_render ``Renderer.remove_special_chars``)."""
    return plot_id.translate({ord(c): "_" for c in r"!@#$%^&*()[]{};,<>?\/:.|`~=_+ "})


def load_plot_defs(repo: Path = REPO) -> list[PlotDef]:
    """The top-level ``plots:`` entries of ``dvc.yaml`` (only those with an id and properties)."""
    dvc_yaml = yaml.safe_load((Path(repo) / "dvc.yaml").read_text(encoding="utf8")) or {}
    defs = []
    for entry in dvc_yaml.get("plots") or []:
        if not isinstance(entry, dict):
            continue  # a bare path: no id to check against
        for plot_id, props in entry.items():
            props = props or {}
            y = props.get("y")
            if isinstance(y, dict):
                y_map = {f: ([c] if isinstance(c, str) else list(c)) for f, c in y.items()}
            else:
                y_map = {}
            defs.append(
                PlotDef(
                    id=plot_id,
                    title=props.get("title"),
                    x=props.get("x") if isinstance(props.get("x"), str) else None,
                    x_label=props.get("x_label"),
                    y_label=props.get("y_label"),
                    y=y_map,
                )
            )
    return defs


def _dvc() -> list[str]:
    exe = Path(sys.executable).with_name("dvc")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dvc"]


def _run_dvc(args: list[str], repo: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(
        [*_dvc(), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise CheckError(f"`dvc {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def plots_json(repo: Path, ids: list[str]) -> dict:
    """``dvc plots show --json <ids>``: {"data": {id: [{"type", "content": spec}]}, "errors": [...]}."""
    out = _run_dvc(["plots", "show", "--json", *ids], repo)
    return json.loads(out)


def render_dvc_html(repo: Path, ids: list[str], out_dir: Path, template: Path | None) -> Path:
    """``dvc plots show <ids> -o out_dir [--html-template template]``; returns index.html."""
    args = ["plots", "show", *ids, "-o", str(Path(out_dir).resolve())]
    if template is not None:
        args += ["--html-template", str(Path(template).resolve())]
    _run_dvc(args, repo)
    html = Path(out_dir) / "index.html"
    if not html.exists():
        raise CheckError(f"dvc plots show wrote no {html}")
    return html


# --------------------------------------------------------------------------------------------
# 1. specs
# --------------------------------------------------------------------------------------------


def _read_csv_columns(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="", encoding="utf8") as handle:
        return list(csv.DictReader(handle))


def _num(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _vega_spec(shown: dict, plot_id: str) -> dict | None:
    entries = [e for e in (shown.get("data") or {}).get(plot_id) or [] if e.get("type") == "vega"]
    return (entries[0].get("content") or {}) if entries else None


def check_specs(defs: list[PlotDef], shown: dict, repo: Path = REPO) -> list[str]:
    """Problems with the vega-lite specs of ``dvc plots show --json`` (``shown``), one per line."""
    problems = [
        f"dvc plots show ({e.get('rev')}): {e.get('type')}: {e.get('msg')}"
        for e in shown.get("errors") or []
        if not e.get("name")
    ]
    for plot in defs:
        errors = [e for e in shown.get("errors") or [] if e.get("name") == plot.id]
        for err in errors:
            problems.append(f"{plot.id}: dvc plots show: {err.get('type')}: {err.get('msg')}")
        spec = _vega_spec(shown, plot.id)
        if spec is None:
            if not errors:
                problems.append(f"{plot.id}: no vega spec in `dvc plots show --json`")
            continue
        rows = (spec.get("data") or {}).get("values") or []
        if not rows:
            problems.append(f"{plot.id}: spec holds no data")
            continue
        title = spec.get("title")
        title = title.get("text") if isinstance(title, dict) else title
        if plot.title and title != plot.title:
            problems.append(f"{plot.id}: title {title!r}, dvc.yaml says {plot.title!r}")
        x_enc = (spec.get("encoding") or {}).get("x") or {}
        if plot.x and x_enc.get("field") != plot.x:
            problems.append(f"{plot.id}: x field {x_enc.get('field')!r}, dvc.yaml says {plot.x!r}")
        if plot.x_label and x_enc.get("title") != plot.x_label:
            problems.append(f"{plot.id}: x label {x_enc.get('title')!r}, dvc.yaml says {plot.x_label!r}")
        if plot.y_label and plot.y_label not in json.dumps(spec.get("layer", spec)):
            problems.append(f"{plot.id}: y label {plot.y_label!r} missing from the spec")
        fields = {row.get("field") for row in rows}
        if plot.y_fields and fields != set(plot.y_fields):
            missing = sorted(set(plot.y_fields) - fields)
            extra = sorted(f for f in fields - set(plot.y_fields) if f is not None)
            problems.append(f"{plot.id}: series missing {missing}, unexpected {extra}")
        # Every (x, column) point of the CSV is in the spec with the same value.
        if plot.x and plot.y:
            got = {
                (row.get("field"), _num(row.get(plot.x))): _num(row.get("dvc_inferred_y_value"))
                for row in rows
            }
            for file, cols in plot.y.items():
                path = Path(repo) / file
                if not path.exists():
                    problems.append(f"{plot.id}: {file} does not exist")
                    continue
                bad = []
                for csv_row in _read_csv_columns(path):
                    x = _num(csv_row.get(plot.x))
                    for col in cols:
                        want, have = _num(csv_row.get(col)), got.get((col, x), "missing")
                        if have == "missing" or want is None or have is None or not math.isclose(want, have):
                            bad.append(f"{col}@{plot.x}={x}: {have} != {want}")
                if bad:
                    problems.append(
                        f"{plot.id}: {len(bad)} point(s) differ from {file}: {'; '.join(bad[:3])}"
                    )
    return problems


# --------------------------------------------------------------------------------------------
# local vega
# --------------------------------------------------------------------------------------------


def vega_versions() -> dict[str, str]:
    """The vega/vega-lite/vega-embed versions DVC's default HTML template pins."""
    try:
        from dvc_render.vega import VegaRenderer

        found = dict(re.findall(r"npm/(vega(?:-lite|-embed)?)@([\w.\-]+)", VegaRenderer.SCRIPTS))
    except Exception:  # noqa: BLE001 - any failure: use the defaults
        found = {}
    return {lib: found.get(lib, version) for lib, version in DEFAULT_VEGA_VERSIONS.items()}


def _candidates(root: Path, lib: str) -> list[Path]:
    return [
        root / lib / "build" / f"{lib}.min.js",
        root / lib / "build" / f"{lib}.js",
        root / lib / f"{lib}.min.js",
        root / lib / f"{lib}.js",
        root / f"{lib}.min.js",
        root / f"{lib}.js",
    ]


def vega_search_dirs(vega_dir: Path | None = None, repo: Path = REPO) -> list[Path]:
    env = os.environ.get("DVC_PLOTS_VEGA_DIR")
    explicit = [Path(p) for p in (vega_dir, env) if p]
    return [*explicit, Path(repo) / "node_modules", CACHE_DIR, *SYSTEM_VEGA_DIRS]


def find_vega(vega_dir: Path | None = None, repo: Path = REPO) -> dict[str, Path] | None:
    """Local vega, vega-lite and vega-embed builds: {lib: file}, or None if any is missing.

    Each library is taken from the first folder that has it: ``vega_dir``, $DVC_PLOTS_VEGA_DIR,
    ``<repo>/node_modules``, the --fetch-vega cache, then system node/Debian folders. In each
    folder the npm layout (``vega/build/vega.min.js``) or a flat ``vega.min.js`` is accepted.
    """
    return find_vega_in(vega_search_dirs(vega_dir, repo))


def find_vega_in(roots: list[Path]) -> dict[str, Path] | None:
    """Each of vega, vega-lite, vega-embed from the first of ``roots`` that has it, or None."""
    found = {}
    for lib in VEGA_LIBS:
        for root in roots:
            hit = next((p for p in _candidates(root, lib) if p.is_file()), None)
            if hit is not None:
                found[lib] = hit
                break
    return found if len(found) == len(VEGA_LIBS) else None


def fetch_vega(dest: Path = CACHE_DIR) -> dict[str, Path]:
    """Fill ``dest`` with the UMD builds of vega, vega-lite, vega-embed via ``npm pack``."""
    npm = shutil.which("npm")
    if npm is None:
        raise CheckError("--fetch-vega needs npm on PATH")
    specs = [f"{lib}@{version}" for lib, version in vega_versions().items()]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [npm, "pack", *specs, "--pack-destination", tmp, "--silent"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            raise CheckError(f"npm pack {' '.join(specs)} failed:\n{proc.stderr.strip()}")
        for lib in VEGA_LIBS:
            tgz = next(Path(tmp).glob(f"{lib}-[0-9]*.tgz"))
            with tarfile.open(tgz) as tar:
                member = tar.extractfile(f"package/build/{lib}.min.js")
                if member is None:
                    raise CheckError(f"{tgz.name} has no build/{lib}.min.js")
                target = Path(dest) / lib / "build" / f"{lib}.min.js"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(member.read())
    found = find_vega_in([Path(dest)])
    if found is None:
        raise CheckError(f"fetched vega into {dest} but cannot find it there")
    return found


# --------------------------------------------------------------------------------------------
# HTML template
# --------------------------------------------------------------------------------------------

HOOK_JS = r"""
<script>
(function () {
  var status = {plots: {}, errors: [], vega: {}};
  var pending = [];
  window.addEventListener('error', function (e) { status.errors.push(String(e.message || e)); });
  var embed = window.vegaEmbed;
  status.vega.embed = typeof embed === 'function';
  status.vega.vega = typeof window.vega === 'object' ? (window.vega.version || 'yes') : null;
  status.vega.vegaLite = typeof window.vegaLite === 'object' ? (window.vegaLite.version || 'yes') : null;
  window.vegaEmbed = function (el, spec, opts) {
    var id = String(el).replace(/^#/, '');
    status.plots[id] = {ok: false, error: 'pending'};
    if (typeof embed !== 'function') {
      status.plots[id].error = 'vegaEmbed is not loaded (no vega/vega-lite/vega-embed scripts)';
      return Promise.resolve(null);
    }
    // SVG instead of DVC's default canvas, so that the dumped DOM shows the marks.
    var p = Promise.resolve().then(function () {
      return embed(el, spec, Object.assign({renderer: 'svg'}, opts || {}));
    }).then(function (res) {
      status.plots[id] = {ok: true, error: null};
      return res;
    }, function (err) {
      status.plots[id] = {ok: false, error: String(err && err.message || err)};
      return null;
    });
    pending.push(p);
    return p;
  };
  function rect(node) {
    if (!node) return null;
    var r = node.getBoundingClientRect();
    return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height];
  }
  window.addEventListener('load', function () {
    Promise.all(pending).then(function () {
      Object.keys(status.plots).forEach(function (id) {
        var div = document.getElementById(id);
        status.plots[id].rect = rect(div && (div.querySelector('svg.marks') || div.querySelector('svg')));
      });
      status.page = {width: document.documentElement.scrollWidth,
                     height: document.documentElement.scrollHeight};
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
    """A ``dvc plots show --html-template`` that loads local vega and records each embed.

    It has no ``{scripts}`` placeholder, so DVC's CDN ``<script>`` tags are left out.
    """
    return TEMPLATE.replace("__VEGA_SCRIPTS__", vega_script_tags(vega)).replace("__HOOK__", HOOK_JS)


def instrument_html(text: str, vega: dict[str, Path] | None) -> str:
    """Make an HTML written by ``dvc plots show`` (any template) checkable offline.

    CDN vega script tags are swapped for local ones and the status hook is added; a page made
    with ``html_template`` is returned unchanged.
    """
    if STATUS_ID in text:
        return text
    text = CDN_SCRIPT.sub("", text)
    head = vega_script_tags(vega) + "\n" + HOOK_JS
    match = re.search(r"<head[^>]*>", text, flags=re.IGNORECASE)
    if match is None:
        return head + text
    return text[: match.end()] + "\n" + head + text[match.end() :]


# --------------------------------------------------------------------------------------------
# Chromium
# --------------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(chromium: str, url: str, extra: list[str], budget_ms: int, size: tuple[int, int]):
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--hide-scrollbars", "--mute-audio",
            "--force-device-scale-factor=1", "--run-all-compositor-stages-before-draw",
            f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
            f"--window-size={size[0]},{size[1]}", *extra, url,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise CheckError(f"chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc


def dump_dom(chromium: str, html: Path, budget_ms: int = 10000, width: int = 1000) -> str:
    return _chromium(chromium, Path(html).resolve().as_uri(), ["--dump-dom"], budget_ms, (width, 800)).stdout


def screenshot(chromium: str, html: Path, png: Path, size: tuple[int, int], budget_ms: int = 10000) -> Path:
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    _chromium(chromium, Path(html).resolve().as_uri(), [f"--screenshot={png}"], budget_ms, size)
    if not png.exists():
        raise CheckError(f"chromium wrote no screenshot {png}")
    return png


# --------------------------------------------------------------------------------------------
# 2. DOM
# --------------------------------------------------------------------------------------------


@dataclass
class Rendered:
    svgs: int = 0
    canvases: int = 0
    line_paths: int = 0  # non-empty <path> inside a vega line mark group
    texts: list[str] = field(default_factory=list)


class _PlotDomParser(HTMLParser):
    """Per plot div (by id): count svg/canvas/line-mark paths and collect <text> contents."""

    def __init__(self, ids):
        super().__init__(convert_charrefs=True)
        self.ids = set(ids)
        self.found: dict[str, Rendered] = {}
        self.stack: list[tuple[str, str, str]] = []  # (tag, plot id or "", class)
        self.text_buf: list[str] | None = None
        self.status_json: str | None = None
        self._in_status = False

    def _plot(self) -> str:
        return next((pid for _, pid, _ in reversed(self.stack) if pid), "")

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("id") == STATUS_ID:
            self._in_status = True
            self.status_json = ""
        plot = attrs.get("id") if tag == "div" and attrs.get("id") in self.ids else ""
        if plot:
            self.found.setdefault(plot, Rendered())
        current = plot or self._plot()
        if current:
            rendered = self.found[current]
            if tag == "svg":
                rendered.svgs += 1
            elif tag == "canvas":
                rendered.canvases += 1
            elif tag == "path" and (attrs.get("d") or "").strip() not in ("", "M0,0Z"):
                if any("mark-line" in cls for _, _, cls in self.stack):
                    rendered.line_paths += 1
            elif tag == "text":
                self.text_buf = []
        if tag not in VOID_TAGS:
            self.stack.append((tag, plot, attrs.get("class") or ""))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == "script" and self._in_status:
            self._in_status = False
        if tag == "text" and self.text_buf is not None:
            current = self._plot()
            if current:
                self.found[current].texts.append("".join(self.text_buf).strip())
            self.text_buf = None
        # pop to the matching open tag (tolerates unclosed elements)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self._in_status:
            self.status_json += data
        if self.text_buf is not None:
            self.text_buf.append(data)


def parse_dom(dom: str, ids: list[str]) -> tuple[dict[str, Rendered], dict | None]:
    parser = _PlotDomParser(ids)
    parser.feed(dom)
    parser.close()
    status = None
    if parser.status_json:
        try:
            status = json.loads(parser.status_json)
        except json.JSONDecodeError:
            status = None
    return parser.found, status


def check_dom(defs: list[PlotDef], dom: str) -> tuple[list[str], dict | None]:
    """Problems with the rendered page, one line per plot that did not render properly."""
    found, status = parse_dom(dom, [div_id(d.id) for d in defs])
    problems = []
    if status is None:
        problems.append("page: the render-status element never appeared (scripts failed or timed out)")
        status = {"plots": {}, "errors": []}
    for err in status.get("errors", []):
        problems.append(f"page: JavaScript error: {err}")
    for plot in defs:
        rendered = found.get(div_id(plot.id))
        state = status["plots"].get(div_id(plot.id))
        if rendered is None:
            problems.append(
                f"{plot.id}: no <div id={div_id(plot.id)!r}> in the page (plot missing from the HTML)"
            )
            continue
        if state is not None and not state.get("ok"):
            problems.append(f"{plot.id}: vega-embed failed: {state.get('error')}")
            continue
        if rendered.svgs == 0 and rendered.canvases == 0:
            problems.append(f"{plot.id}: no chart drawn (no <svg>/<canvas> in its div)")
            continue
        if rendered.svgs == 0:
            continue  # drawn on a canvas: the DOM cannot show the marks, the screenshot check must
        want = len(plot.y_fields) or 1
        if rendered.line_paths == 0 and not any(rendered.texts):
            problems.append(f"{plot.id}: chart is empty (no lines, title or legend drawn)")
            continue
        if rendered.line_paths < want:
            problems.append(f"{plot.id}: {rendered.line_paths} line(s) drawn, expected at least {want}")
        texts = set(rendered.texts)
        if plot.title and plot.title not in texts:
            problems.append(f"{plot.id}: title {plot.title!r} not drawn")
        missing = [f for f in plot.y_fields if f not in texts]
        if missing:
            problems.append(f"{plot.id}: no legend entry for {missing}")
    return problems, status


# --------------------------------------------------------------------------------------------
# 3. screenshot
# --------------------------------------------------------------------------------------------


def _hex_rgb(color: str) -> tuple[int, int, int] | None:
    match = re.fullmatch(r"#([0-9a-fA-F]{6})", color or "")
    if not match:
        return None
    value = int(match.group(1), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def line_colors(spec: dict) -> list[tuple[int, int, int]]:
    """The colours the spec's color scale gives the lines (DVC: one per revision)."""
    scale = ((spec.get("encoding") or {}).get("color") or {}).get("scale") or {}
    colors = [_hex_rgb(c) for c in scale.get("range") or [] if isinstance(c, str)]
    return [c for c in colors if c]


def check_screenshot(png: Path, boxes: dict[str, list | None], colors: dict[str, list]) -> list[str]:
    """The screenshot is not blank, and each plot's box has ink and pixels of its line colour."""
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    problems = []
    if float(image.std()) < 2.0:
        problems.append(f"screenshot: blank (pixel std {image.std():.2f}) in {png}")
        return problems
    height, width, _ = image.shape
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


# --------------------------------------------------------------------------------------------
# the whole check
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    rendered: bool = False  # vega was available, DOM and screenshot checks ran
    screenshot: Path | None = None
    html: Path | None = None
    notes: list[str] = field(default_factory=list)


def check_html(
    html: Path,
    defs: list[PlotDef],
    specs: dict,
    chromium: str,
    out: Path,
    vega: dict[str, Path] | None,
    budget_ms: int = 10000,
    width: int = 1000,
) -> Report:
    """DOM and screenshot checks of one plots HTML (instrumented in place if needed)."""
    report = Report(html=Path(html))
    text = Path(html).read_text(encoding="utf8")
    instrumented = instrument_html(text, vega)
    if instrumented != text:
        Path(html).write_text(instrumented, encoding="utf8")
    dom = dump_dom(chromium, html, budget_ms, width)
    dom_problems, status = check_dom(defs, dom)
    page = (status or {}).get("page") or {}
    size = (width, min(max(int(page.get("height") or 0) + 16, 600), 16000))
    report.screenshot = screenshot(chromium, html, out, size, budget_ms)
    if vega is None:
        report.notes.append(
            "no local vega/vega-lite/vega-embed: charts could not be drawn, rendering NOT verified "
            f"(screenshot of the page as it is: {report.screenshot}); run with --fetch-vega or --vega-dir"
        )
        return report
    report.rendered = True
    report.problems += dom_problems
    boxes = {d.id: ((status or {}).get("plots", {}).get(div_id(d.id)) or {}).get("rect") for d in defs}
    colors = {d.id: line_colors(_vega_spec(specs, d.id) or {}) for d in defs}
    failed = {p.split(":", 1)[0] for p in dom_problems}
    boxes = {k: v for k, v in boxes.items() if k not in failed}
    report.problems += check_screenshot(report.screenshot, boxes, colors)
    return report


def run_check(
    repo: Path = REPO,
    out: Path = DEFAULT_OUT,
    vega_dir: Path | None = None,
    html_dir: Path | None = None,
    chromium: str | None = None,
    budget_ms: int = 10000,
    width: int = 1000,
    ids: list[str] | None = None,
    no_vega: bool = False,
) -> Report:
    """The whole check of ``repo``; ``no_vega`` skips the vega lookup (spec checks only)."""
    repo = Path(repo).resolve()
    defs = load_plot_defs(repo)
    if not defs:
        raise CheckError(f"{repo / 'dvc.yaml'} has no top-level plots with ids")
    if ids:
        unknown = sorted(set(ids) - {d.id for d in defs})
        if unknown:
            raise CheckError(f"not plot ids of dvc.yaml: {unknown}")
        defs = [d for d in defs if d.id in ids]
    chromium = chromium or find_chromium()
    if chromium is None:
        raise CheckError("no chromium on PATH (Debian: apt-get install -y --no-install-recommends chromium)")
    if vega_dir is not None and find_vega_in([Path(vega_dir)]) is None:
        raise CheckError(f"--vega-dir {vega_dir}: no vega, vega-lite and vega-embed builds there")
    vega = None if no_vega else find_vega(vega_dir, repo)

    plot_ids = [d.id for d in defs]
    specs = plots_json(repo, plot_ids)
    report = Report()
    report.problems += check_specs(defs, specs, repo)

    tmp = None
    if html_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="dvc-plots-check-")
        html_dir = Path(tmp.name)
    try:
        html_dir = Path(html_dir)
        html_dir.mkdir(parents=True, exist_ok=True)
        template = html_dir / "template.html"
        template.write_text(html_template(vega), encoding="utf8")
        html = render_dvc_html(repo, plot_ids, html_dir / "plots", template)
        rendered = check_html(html, defs, specs, chromium, Path(out), vega, budget_ms, width)
    finally:
        if tmp is not None:
            tmp.cleanup()
    report.problems += rendered.problems
    report.rendered = rendered.rendered
    report.screenshot = rendered.screenshot
    report.html = None if tmp is not None else rendered.html
    report.notes += rendered.notes
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
    parser.add_argument("--budget-ms", type=int, default=10000, help="chromium --virtual-time-budget")
    parser.add_argument("--width", type=int, default=1000, help="window width in px")
    parser.add_argument("ids", nargs="*", help="plot ids to check (default: all of dvc.yaml plots:)")
    args = parser.parse_args(argv)
    try:
        if args.fetch_vega and find_vega(args.vega_dir, args.repo) is None:
            found = fetch_vega()
            print("fetched " + ", ".join(f"{lib}: {path}" for lib, path in found.items()))
        vega = None if args.no_vega else find_vega(args.vega_dir, args.repo)
        print("vega: " + (", ".join(str(vega[lib]) for lib in VEGA_LIBS) if vega else "NOT FOUND"))
        report = run_check(
            args.repo, args.out, args.vega_dir, args.html_dir, args.chromium, args.budget_ms, args.width,
            args.ids or None, args.no_vega,
        )  # fmt: skip
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
        for problem in report.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    if not report.rendered:
        print("specs OK; rendering NOT verified (no local vega)")
        return 3
    print("OK: every plot of dvc.yaml plots: rendered (specs, DOM and screenshot checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
