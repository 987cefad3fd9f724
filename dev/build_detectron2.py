#!/usr/bin/env python3
"""Build and install detectron2 0.6 for FastTCM-D2 without its C++ extension.

detectron2 is not on PyPI under its own name. The sdist ``pb1-detectron2==0.6`` carries the upstream
v0.6 Python sources byte for byte, minus ``detectron2/layers/csrc``, so its own ``setup.py`` cannot
build. This installer (see projects/FastTCM/docs/design_choices.md, "Dependencies and
installation"):

1. downloads that sdist from the package index (``$PIP_INDEX_URL``, pip's configured index, or
   PyPI) and checks its sha256 against the pinned value; a mismatch aborts;
2. applies exactly the upstream post-0.6 compatibility fixes, nothing else:
   ``Image.LINEAR -> Image.BILINEAR`` (Pillow >= 10) and ``np.bool/np.int/np.float -> builtins``
   (numpy >= 1.24);
3. writes a pure-Python wheel named ``detectron2`` 0.6 (packages ``detectron2`` and the three
   ``detectron2.projects.*`` packages the sdist maps in), with the sdist's install requirements;
4. writes the small ``fasttcm-detectron2-ops`` wheel from ``dev/d2_ops_hook/``: a ``.pth`` hook that
   serves ``detectron2._C`` from the project's own ops *only when no compiled ``_C`` exists*;
5. installs both wheels into the running interpreter's environment with pip.

Run it with the interpreter of the environment to install into (``.venv/bin/python``), after
torch. Re-running it when the same build is already installed does nothing.
"""

import argparse
import base64
import csv
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

SDIST_NAME = "pb1-detectron2"
SDIST_VERSION = "0.6"
SDIST_FILE = f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"

WHEEL_NAME = "detectron2"
WHEEL_VERSION = "0.6"
HOOK_NAME = "fasttcm_detectron2_ops"
HOOK_VERSION = "0.1.0"

REPO_ROOT = Path(__file__).resolve().parent.parent
HOOK_SOURCE_DIR = REPO_ROOT / "dev" / "d2_ops_hook"

# detectron2's setup.py maps these packages from projects/ into detectron2.projects.*
PROJECT_PACKAGES = {
    "detectron2/projects/point_rend": "projects/PointRend/point_rend",
    "detectron2/projects/deeplab": "projects/DeepLab/deeplab",
    "detectron2/projects/panoptic_deeplab": "projects/Panoptic-DeepLab/panoptic_deeplab",
}

# Install requirements of the sdist (pb1_detectron2.egg-info/requires.txt). The one change is that
# black is left unpinned: 21.4b2 does not import with the click releases Python 3.11 gets; black is
# only used by LazyConfig.save() to pretty-print.
REQUIREMENTS = [
    "Pillow>=7.1",
    "matplotlib",
    "pycocotools>=2.0.2",
    "termcolor>=1.1",
    "yacs>=0.1.8",
    "tabulate",
    "cloudpickle",
    "tqdm>4.29.0",
    "tensorboard",
    "fvcore<0.1.6,>=0.1.5",
    "iopath<0.1.10,>=0.1.7",
    "future",
    "pydot",
    "omegaconf>=2.1",
    "hydra-core>=1.1",
    "black",
]

# The upstream compatibility fixes: (pattern, replacement). Word boundaries keep np.bool_, np.int64,
# np.float32 and friends untouched.
COMPAT_FIXES = [
    (re.compile(r"\bImage\.LINEAR\b"), "Image.BILINEAR"),
    (re.compile(r"\bnp\.bool\b(?!_)"), "bool"),
    (re.compile(r"\bnp\.int\b(?!_)"), "int"),
    (re.compile(r"\bnp\.float\b(?!_)"), "float"),
]


class BuildError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _index_url() -> str:
    """The package index to read: $PIP_INDEX_URL, else pip's configured index, else PyPI."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        try:
            out = subprocess.run(
                [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            url = out or None
        except OSError:
            url = None
    return (url or "https://pypi.org/simple").rstrip("/")


def fetch_sdist(cache_dir: Path) -> Path:
    """Return the path of the verified sdist, downloading it from the package index when needed.

    The file is located through the index's simple (PEP 503) page. It is not fetched with
    ``pip download``: pip would run the sdist's setup.py to prepare metadata, and recent pip
    refuses that sdist's direct-URL extra.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    sdist = cache_dir / SDIST_FILE
    if not sdist.exists():
        index = _index_url()
        page_url = f"{index}/{SDIST_NAME}/"
        print(f"[build_detectron2] downloading {SDIST_FILE} (index {index})", flush=True)
        try:
            with urllib.request.urlopen(page_url, timeout=120) as r:
                page = r.read().decode("utf-8", "replace")
            links = re.findall(r'href="([^"]+)"', page)
            match = [u for u in links if u.split("#")[0].endswith("/" + SDIST_FILE)]
            if not match:
                raise BuildError(f"{page_url} lists no {SDIST_FILE}")
            file_url = urllib.parse.urljoin(page_url, match[0].split("#")[0])
            tmp = sdist.with_suffix(".part")
            with urllib.request.urlopen(file_url, timeout=300) as r, open(tmp, "wb") as f:
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    f.write(chunk)
            tmp.replace(sdist)
        except (urllib.error.URLError, OSError) as e:
            raise BuildError(f"could not download {SDIST_FILE} from {page_url}: {e}")
    digest = sha256_of(sdist)
    if digest != SDIST_SHA256:
        bad = sdist.with_suffix(".rejected")
        sdist.replace(bad)
        raise BuildError(
            f"sha256 mismatch for {sdist}:\n  expected {SDIST_SHA256}\n  got      {digest}\n"
            f"The file was moved to {bad}. Refusing to build detectron2 from an unverified source."
        )
    return sdist


def apply_compat_fixes(rel_path: str, text: str, counts: dict) -> str:
    for pattern, repl in COMPAT_FIXES:
        text, n = pattern.subn(repl, text)
        if n:
            counts[rel_path] = counts.get(rel_path, 0) + n
    return text


def collect_sources(sdist: Path):
    """Yield (archive path inside the wheel, bytes) for every file of the detectron2 packages."""
    prefix = f"{SDIST_NAME}-{SDIST_VERSION}/"
    files = {}
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(prefix):
                continue
            rel = member.name[len(prefix) :]
            if "__pycache__" in rel or rel.endswith((".pyc", ".so")):
                continue
            target = None
            if rel.startswith("detectron2/"):
                target = rel
            else:
                for pkg, src in PROJECT_PACKAGES.items():
                    if rel.startswith(src + "/"):
                        target = pkg + rel[len(src) :]
            if target is None and rel == "LICENSE":
                target = "LICENSE"
            if target is not None:
                files[target] = tar.extractfile(member).read()
    if "detectron2/__init__.py" not in files:
        raise BuildError(f"{sdist} does not contain detectron2/__init__.py")
    return files


def record_line(name: str, data: bytes) -> list:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def write_wheel(
    out_dir: Path, name: str, version: str, files: dict, requires, summary: str, top_level
) -> Path:
    """Write a pure-Python wheel containing `files` ({archive name: bytes})."""
    dist_info = f"{name}-{version}.dist-info"
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {summary}",
        "Requires-Python: >=3.8",
    ] + [f"Requires-Dist: {r}" for r in requires]
    extra = {
        f"{dist_info}/METADATA": ("\n".join(meta) + "\n").encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: fasttcm-d2 dev/build_detectron2.py\n"
            "Root-Is-Purelib: true\nTag: py3-none-any\n"
        ).encode(),
        f"{dist_info}/top_level.txt": ("\n".join(top_level) + "\n").encode(),
    }
    if "LICENSE" in files:
        extra[f"{dist_info}/LICENSE"] = files.pop("LICENSE")
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{name}-{version}-py3-none-any.whl"
    tmp = wheel.with_suffix(".tmp")
    rows = []
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname in sorted(files) + sorted(extra):
            data = files.get(arcname, extra.get(arcname))
            info = zipfile.ZipInfo(arcname, date_time=(2021, 11, 16, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
            rows.append(record_line(arcname, data))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows + [[f"{dist_info}/RECORD", "", ""]])
        zf.writestr(f"{dist_info}/RECORD", buf.getvalue())
    tmp.replace(wheel)
    return wheel


def build_detectron2_wheel(sdist: Path, out_dir: Path) -> Path:
    files = collect_sources(sdist)
    counts = {}
    for rel in list(files):
        if rel.endswith(".py"):
            text = files[rel].decode("utf-8")
            fixed = apply_compat_fixes(rel, text, counts)
            files[rel] = fixed.encode("utf-8")
    # The fixes are known: if none applied, the sdist is not what we think it is.
    for must in ("detectron2/data/transforms/transform.py", "detectron2/structures/masks.py"):
        if must not in counts:
            raise BuildError(f"expected compatibility fixes in {must}, found none")
    for rel, n in sorted(counts.items()):
        print(f"[build_detectron2] compat fix: {rel}: {n} replacement(s)")
    return write_wheel(
        out_dir,
        WHEEL_NAME,
        WHEEL_VERSION,
        files,
        REQUIREMENTS,
        "detectron2 v0.6 Python sources (from pb1-detectron2 0.6), built without _C by FastTCM-D2",
        ["detectron2"],
    )


def build_hook_wheel(out_dir: Path) -> Path:
    files = {}
    for src in sorted(HOOK_SOURCE_DIR.iterdir()):
        if src.suffix in (".py", ".pth"):
            files[src.name] = src.read_bytes()
    if f"{HOOK_NAME}.pth" not in files:
        raise BuildError(f"{HOOK_SOURCE_DIR} lacks {HOOK_NAME}.pth")
    return write_wheel(
        out_dir,
        HOOK_NAME,
        HOOK_VERSION,
        files,
        [],
        "Serves detectron2._C from FastTCM-D2's own ops when detectron2 has no compiled _C",
        [f"_{HOOK_NAME}_hook"],
    )


def installed_version(dist: str):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def installed_record_matches(dist: str, wheel: Path) -> bool:
    """True if `dist` is installed from exactly this wheel (same RECORD hashes for its files)."""
    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    with zipfile.ZipFile(wheel) as zf:
        rec_name = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD")][0]
        wanted = {r[0]: r[1] for r in csv.reader(io.StringIO(zf.read(rec_name).decode())) if r[1]}
    have = {str(f): f.hash.mode + "=" + f.hash.value for f in (d.files or []) if f.hash}
    return all(have.get(k) == v for k, v in wanted.items())


def compiled_detectron2_c():
    """Path of an installed detectron2's compiled extension (``detectron2/_C*.so``), or None.

    Looks at files only: finding the top-level package's spec does not execute it, so this works
    for wheel and editable (``pip install -e``) installs of a user-built detectron2 alike.
    """
    import importlib.util

    spec = importlib.util.find_spec("detectron2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        for ext in sorted(Path(loc).glob("_C*")):
            if ext.suffix in (".so", ".pyd"):
                return str(ext)
    return None


def pip_install(wheels, no_deps=False):
    cmd = (
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "--force-reinstall",
            "--no-deps",
        ]
        if no_deps
        else [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    )
    subprocess.run(cmd + [str(w) for w in wheels], check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cache-dir",
        default=str(REPO_ROOT / "build" / "detectron2"),
        help="where the sdist and built wheels are kept",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an installed detectron2 even if it has a compiled _C",
    )
    parser.add_argument("--wheels-only", action="store_true", help="build, do not install")
    args = parser.parse_args(argv)
    cache = Path(args.cache_dir)
    try:
        sdist = fetch_sdist(cache)
        d2_wheel = build_detectron2_wheel(sdist, cache / "wheels")
        hook_wheel = build_hook_wheel(cache / "wheels")
    except BuildError as e:
        raise SystemExit(f"[build_detectron2] ERROR: {e}")
    print(f"[build_detectron2] built {d2_wheel.name} and {hook_wheel.name}")
    if args.wheels_only:
        return
    pairs = [(WHEEL_NAME, d2_wheel), (HOOK_NAME, hook_wheel)]
    compiled = compiled_detectron2_c()
    if compiled and not args.force:
        print(
            f"[build_detectron2] a detectron2 with a compiled _C is installed ({compiled}); "
            "using it untouched (pass --force to replace it with the build without _C)"
        )
        pairs = pairs[1:]
    todo = [w for d, w in pairs if not installed_record_matches(d, w)]
    if not todo:
        print("[build_detectron2] already installed; nothing to do")
        return
    # first pass resolves dependencies from the registry; the second replaces any other
    # detectron2 build with exactly ours.
    pip_install(todo)
    pip_install(todo, no_deps=True)
    print(
        f"[build_detectron2] installed detectron2=={installed_version(WHEEL_NAME)}, "
        f"{HOOK_NAME}=={installed_version(HOOK_NAME)}"
    )


if __name__ == "__main__":
    main()
