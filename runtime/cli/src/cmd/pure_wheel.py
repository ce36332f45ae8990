"""Makes a pure-Python wheel from a source distribution whose C code is optional.

Used by `squall pack build` for StackStorm-environment packages that publish no pure wheel but
run without their C speedups (PyYAML's `lib/yaml` falls back from libyaml, MarkupSafe's
`src/markupsafe` from `_speedups`): the package's `.py` files only, tagged `py3-none-any`, so
pip's resolver can use it (`--find-links`) wherever a requirement names the package.

usage: python3 pure_wheel.py <sdist.tar.gz> <package dir inside the sdist> <distribution name> <out dir>
"""

import base64
import hashlib
import os
import sys
import tarfile
import zipfile


def main(archive, inner, dist, out):
    version = os.path.basename(archive)[: -len(".tar.gz")].rsplit("-", 1)[1]
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
    main(*sys.argv[1:5])
