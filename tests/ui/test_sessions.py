"""Session folders go with their session, and those still open when the server process stops go with it."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_stopping_server_takes_its_open_sessions_folders_but_a_forked_child_does_not():
    script = textwrap.dedent("""
        import os, sys
        from ui.sessions import new_workdir, remove_workdir
        album, upload = new_workdir("mvl-album-"), new_workdir("mvl-upload-")
        (upload / "model.onnx").write_bytes(b"a person's model")
        ended = new_workdir("mvl-export-")
        remove_workdir(ended)
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # a child that exits normally runs the parent's exit handlers too: they leave these alone
        os.waitpid(pid, 0)
        print(album, upload, ended, album.exists() and upload.exists())
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    album, upload, ended, alive_after_child = out.stdout.split()
    assert alive_after_child == "True"  # still there when the forked child had exited
    assert not Path(album).exists() and not Path(upload).exists() and not Path(ended).exists()
