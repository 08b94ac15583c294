"""Rebuild offline.html, the page template `dvc plots show` / `dvc plots diff` fill (DVC config
`plots.html_template`), with vega, vega-lite and vega-embed inlined from their npm packages, so
the page renders without network access. Run from the repository root:
`python .dvc/plots/build.py` (needs npm and the npm registry; the output is committed)."""
import subprocess
import tarfile
import tempfile
from pathlib import Path

# the versions DVC's own page loads from a CDN (dvc_render/vega.py)
PACKAGES = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>robust-privacy: DVC plots</title>
@SCRIPTS@
    <style>
        body { font-family: sans-serif; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def main() -> None:
    scripts = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, version in PACKAGES.items():
            out = subprocess.run(["npm", "pack", f"{name}@{version}"], cwd=tmp, capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()[-1]
            with tarfile.open(Path(tmp) / out) as tar:
                js = tar.extractfile(f"package/build/{name}.min.js").read().decode()
            scripts.append(f"    <!-- {name} {version} (BSD-3-Clause, University of Washington Interactive Data Lab) -->\n"
                           f"    <script type=\"text/javascript\">{js}</script>")
    page = PAGE.replace("@SCRIPTS@", "\n".join(scripts))  # not str.format: the scripts hold braces
    Path(__file__).with_name("offline.html").write_text(page, encoding="utf8")


if __name__ == "__main__":
    main()
