"""Bad inputs, security part (docs/ERRORS.md "Hostile inputs"): outputs stay in the run folder, assets are read
only from the provider's hosts AND ports, redirects are checked hop by hop (a loopback listener proves that no
request reaches a foreign address), no secrets are written. Helpers and the archive come from
tests/test_bad_inputs.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from geo.cli.main import main
from tests.conftest import REPO
from tests.test_bad_inputs import assert_msg, catalogue, cli, ds, run_args  # noqa: F401 — ds is a fixture


# -- security: outputs stay in the run folder, assets only from the provider's hosts, no secrets written --

def trust(tmp_path: Path, *urls: str) -> Path:
    """A run config whose ``[search] asset_hosts`` vouches for the host:port of each of ``urls``."""
    hosts = [u.split("://", 1)[1].split("/", 1)[0] for u in urls]
    p = tmp_path / "trust.toml"
    p.write_text(f"[search]\nasset_hosts = {json.dumps(hosts)}\n")
    return p


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_hostile_item_ids_cannot_escape_run_folder(ds, tmp_path, capsys):
    """Item ids with '/', '..' and absolute paths are data, never file names: every file written lies under --out."""
    bad_ids = iter(["../../escape", "/tmp/abs-escape", "a/../../b", "..", "x/y/z", "ok\\..\\..\\win"] * 10)

    def rename(it):
        it["id"] = next(bad_ids)

    (tmp_path / "cat").mkdir()
    items = catalogue(ds, tmp_path / "cat", rename)
    out = tmp_path / "sandbox" / "run"
    out.parent.mkdir()
    before_tmp, before_ds = _tree(tmp_path), _tree(ds.root)
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, run_args(ds, out, items))])
    assert exc.value.code == 0, capsys.readouterr().err
    new = {p for p in _tree(tmp_path) - before_tmp}
    assert new and all(out in p.parents or p == out for p in new), sorted(new - {p for p in new if out in p.parents})
    assert _tree(ds.root) == before_ds
    assert not Path("/tmp/abs-escape").exists()
    man = json.loads((out / "manifest.json").read_text())
    assert "../../escape" in sum(man["scenes"].values(), [])  # kept as data


def _serve(ds, tmp_path, href_for):
    """The archive's items behind `rustac serve`, with asset hrefs rewritten by ``href_for(path)``."""
    from servers import RustacServer, rustac_binary

    if rustac_binary() is None:
        pytest.skip("rustac binary not found; install the dev extra (pip install rustac)")

    def mutate(it):
        for a in it["assets"].values():
            if a.get("href", "").endswith(".tif"):
                a["href"] = href_for(Path(a["href"]))

    return RustacServer([catalogue(ds, tmp_path, mutate)])


@pytest.mark.parametrize("href_for,needle", [
    (lambda p: f"https://evil.example.com/{p.name}", "host 'evil.example.com'"),
    (lambda p: str(p), "scheme 'local file'"),
    (lambda p: f"file://{p}", "scheme 'file'"),
    (lambda p: f"s3://sentinel-cogs/{p.name}", "scheme 's3'"),
])
def test_assets_only_from_provider_hosts(ds, tmp_path, capsys, href_for, needle):
    with _serve(ds, tmp_path, href_for) as api:
        code, line = cli(run_args(ds, tmp_path / "run", api.url), capsys)
    assert code == 3
    assert_msg(line, needle, "check the --stac-url catalogue")
    assert not (tmp_path / "run" / "tasks").exists(), "no task may start on an untrusted asset"


def test_local_catalogue_refuses_other_schemes(ds, tmp_path, capsys):
    items = catalogue(ds, tmp_path, lambda it: it["assets"]["red"].update(href="ftp://example.org/B04.tif"))
    code, line = cli(run_args(ds, tmp_path / "run", items), capsys)
    assert code == 3
    assert_msg(line, "scheme 'ftp'", "check the --stac-url catalogue")


def test_credentials_never_written(ds, tmp_path):
    """A full run over http with a user:password URL and a token query: neither reaches the logs (-vv),
    the manifest or any other output; the same-host http assets are accepted."""
    from servers import RangeServer

    secret_pw, secret_tok = "pw-Zq81x", "tok-Hx93k"
    with RangeServer(ds.root) as files:
        base = files.url
        with _serve(ds, tmp_path, lambda p: f"{base}/{p.relative_to(ds.root)}") as api:
            url = api.url.replace("http://", f"http://reader:{secret_pw}@") + f"/?token={secret_tok}"
            out = tmp_path / "run"
            cfg = trust(tmp_path, base)  # the COG server listens on another port than the API
            res = subprocess.run([sys.executable, "-m", "geo", "-vv", *map(str, run_args(ds, out, url, None,
                                                                                          "--config", cfg))],
                                 capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    for secret in (secret_pw, secret_tok):
        assert secret not in res.stderr and secret not in res.stdout
        for p in out.rglob("*"):
            if p.is_file() and p.suffix in (".json", ".md", ".html", ".csv", ".geojson"):
                assert secret not in p.read_text(errors="replace"), p
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["parameters"]["search"]["provider"].startswith("http://127.0.0.1:")
