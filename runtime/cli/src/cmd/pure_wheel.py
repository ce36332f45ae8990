"""Makes a pure-Python wheel from a source distribution whose C code is optional.

Used by `squall pack build` for StackStorm-environment packages that publish no pure wheel but
run without their C speedups (PyYAML's `lib/yaml` falls back from libyaml, MarkupSafe's
`src/markupsafe` from `_speedups`): the package's `.py` files only, tagged `py3-none-any`, so
pip's resolver can use it (`--find-links`) wherever a requirement names the package.

The source distribution is fetched from PyPI's JSON API (the newest non-pre-release matching the
specifier), checked against the sha256 PyPI publishes, and only read: nothing in it runs (pip
would run its build backend to prepare its metadata).

usage: python3 pure_wheel.py <distribution> <specifier, e.g. ">=5.1" or ""> <package dir inside
the sdist> <work dir> <out dir>
"""

import base64
import hashlib
import json
import os
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile

from pip._vendor.packaging.specifiers import SpecifierSet
from pip._vendor.packaging.version import InvalidVersion, Version


def fetch(dist, spec, work):
    """Downloads the newest matching source distribution of `dist`; returns (path, version)."""
    index = "https://pypi.org/pypi/%s/json" % dist
    with urllib.request.urlopen(index, timeout=60) as r:
        releases = json.load(r)["releases"]
    wanted = SpecifierSet(spec)
    candidates = []
    for text, files in releases.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if version.is_prerelease or version not in wanted:
            continue
        for f in files:
            if f["packagetype"] == "sdist" and f["filename"].endswith(".tar.gz") and not f.get("yanked"):
                candidates.append((version, f))
    if not candidates:
        sys.exit("PyPI has no source distribution of %s%s" % (dist, spec))
    version, f = max(candidates, key=lambda c: c[0])
    # A mirror may answer with URLs relative to the JSON document.
    with urllib.request.urlopen(urllib.parse.urljoin(index, f["url"]), timeout=300) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != f["digests"]["sha256"]:
        sys.exit("%s: sha256 does not match PyPI's" % f["filename"])
    path = os.path.join(work, f["filename"])
    with open(path, "wb") as out:
        out.write(data)
    return path, str(version)


def main(dist, spec, inner, work, out):
    archive, version = fetch(dist, spec, work)
    files = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            top, _, rest = member.name.partition("/")
            if member.isfile() and rest.startswith(inner + "/") and rest.endswith((".py", ".typed")):
                package = inner.rsplit("/", 1)[-1]
                files[package + rest[len(inner):]] = tar.extractfile(member).read()
    if not files:
        sys.exit("%s: no files under %s" % (archive, inner))
    info = "%s-%s.dist-info" % (dist, version)
    files[info + "/METADATA"] = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (dist, version)).encode()
    files[info + "/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: squall pack build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()
    record = []
    for name, data in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(info + "/RECORD,,")
    files[info + "/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = os.path.join(out, "%s-%s-py3-none-any.whl" % (dist, version))
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in sorted(files.items()):
            z.writestr(name, data)
    print(wheel)


if __name__ == "__main__":
    main(*sys.argv[1:6])
