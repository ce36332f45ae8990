"""``eventlet.green.<module>`` is the standard library's ``<module>`` (see ``eventlet``)."""

import importlib
import importlib.abc
import importlib.util
import sys

_PREFIX = __name__ + "."


class _StdlibAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.startswith(_PREFIX):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(spec.name[len(_PREFIX):])

    def exec_module(self, module):
        return None


sys.meta_path.insert(0, _StdlibAlias())
