"""``subprocess`` for Python content, over Squall's ``process`` capability.

A component cannot fork. ``install()`` replaces ``subprocess.Popen`` with a class that runs the
command through ``squall:plugin/process`` when its result is first needed (``communicate``,
``wait``, ``poll``, reading ``stdout``): the host checks the whole argv against the pack's
``commands`` grant (and ``env``, ``cwd``), never through a shell unless the argv is one
(``shell=True`` runs ``/bin/sh -c <command>``, which the grant must name), and records it in the
execution's ``commands``. ``subprocess.run``, ``call``, ``check_call``, ``check_output``,
``getoutput`` and ``getstatusoutput`` are the standard library's, built on this ``Popen``.
A command that is not granted raises ``PermissionError`` naming the grant to add; stdin is
written whole before the command starts; the output comes when it has ended. Differences from
a real child process: a ``Popen`` whose result is never asked for never runs; output not sent
to ``PIPE`` is dropped (not inherited); ``env=`` adds to the command's granted environment
rather than replacing it.
"""

import io
import math
import os
import shlex
import subprocess

from componentize_py_types import Err
from wit_world.imports import process

__all__ = ["Popen", "install"]

PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
DEVNULL = subprocess.DEVNULL


class Popen(object):
    """``subprocess.Popen`` over the ``process`` capability (see the module docs)."""

    def __init__(self, args, bufsize=-1, executable=None, stdin=None, stdout=None, stderr=None,
                 preexec_fn=None, close_fds=True, shell=False, cwd=None, env=None,
                 universal_newlines=None, startupinfo=None, creationflags=0,
                 restore_signals=True, start_new_session=False, pass_fds=(), *, user=None,
                 group=None, extra_groups=None, encoding=None, errors=None, text=None, umask=-1,
                 pipesize=-1, process_group=None):
        self.args = args
        if shell:
            command = args if isinstance(args, (str, bytes)) else " ".join(str(a) for a in args)
            if isinstance(command, bytes):
                command = command.decode()
            argv = [executable or "/bin/sh", "-c", command]
        else:
            if isinstance(args, (str, bytes)):
                argv = shlex.split(args.decode() if isinstance(args, bytes) else args)
            else:
                argv = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in args]
            if executable:
                argv[0] = os.fsdecode(executable)
        self._argv = argv
        self._cwd = os.fsdecode(cwd) if cwd is not None else None
        self._env = [(str(k), str(v)) for k, v in (env or {}).items() if os.environ.get(k) != v]
        self._text = bool(text or universal_newlines or encoding or errors)
        self._encoding = encoding or "utf-8"
        self._errors = errors or "strict"
        self._want_stdout = stdout == PIPE
        self._want_stderr = stderr == PIPE
        self._merge_stderr = stderr == STDOUT
        self._stdin_pipe = io.BytesIO() if stdin == PIPE else None
        self._stdin_given = None
        if stdin not in (None, PIPE, DEVNULL) and hasattr(stdin, "read"):
            data = stdin.read()
            self._stdin_given = data.encode() if isinstance(data, str) else data
        self.stdin = _Writer(self._stdin_pipe, self._text, self._encoding) if self._stdin_pipe is not None else None
        self.pid = 0
        self.returncode = None
        self._output = None

    def _run(self, input=None, timeout=None):
        if self._output is not None:
            return self._output
        data = input if input is not None else self._stdin_given
        if data is None and self._stdin_pipe is not None:
            data = self._stdin_pipe.getvalue() or None
        if isinstance(data, str):
            data = data.encode(self._encoding, self._errors)
        request = process.CommandRequest(
            argv=self._argv,
            env=self._env,
            cwd=self._cwd,
            stdin=data,
            timeout_seconds=int(math.ceil(timeout)) if timeout else None,
        )
        try:
            self._output = process.run(request)
        except Err as e:
            message = str(e.value)
            if "not granted" in message:
                raise PermissionError(message)
            if "not found" in message:
                raise FileNotFoundError(message)
            raise OSError(message)
        out = self._output
        self.returncode = out.exit_code if out.exit_code is not None else -(out.signal or 9)
        if out.timed_out and timeout:
            raise subprocess.TimeoutExpired(self.args, timeout, out.stdout, out.stderr)
        return out

    def _shape(self, text):
        if self._text:
            return text
        return text.encode(self._encoding, "surrogateescape")

    def communicate(self, input=None, timeout=None):
        out = self._run(input, timeout)
        stdout = out.stdout + (out.stderr if self._merge_stderr else "")
        return (
            self._shape(stdout) if self._want_stdout else None,
            self._shape(out.stderr) if self._want_stderr else None,
        )

    def wait(self, timeout=None):
        self._run(timeout=timeout)
        return self.returncode

    def poll(self):
        self._run()
        return self.returncode

    @property
    def stdout(self):
        if not self._want_stdout:
            return None
        out, _ = self.communicate()
        return io.StringIO(out) if self._text else io.BytesIO(out)

    @property
    def stderr(self):
        if not self._want_stderr:
            return None
        _, err = self.communicate()
        return io.StringIO(err) if self._text else io.BytesIO(err)

    def send_signal(self, sig):
        return None

    def terminate(self):
        return None

    def kill(self):
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Writer(object):
    """``Popen.stdin`` with ``stdin=PIPE``: what is written is the command's stdin."""

    def __init__(self, buffer, text, encoding):
        self._buffer = buffer
        self._text = text
        self._encoding = encoding

    def write(self, data):
        self._buffer.write(data.encode(self._encoding) if isinstance(data, str) else data)
        return len(data)

    def flush(self):
        return None

    def close(self):
        return None


def install():
    """Makes ``subprocess.Popen`` (and so ``run``, ``check_output``, ...) this module's."""
    subprocess.Popen = Popen
