"""Where Chromium's fontconfig looks: the bundle's fonts plus the Noto fonts, never a file in the bundle."""

from __future__ import annotations

import tempfile
from pathlib import Path

from invoicing.adapters.chromium import ChromiumInstall, locate_fonts


def _bundle(tmp_path: Path, monkeypatch) -> Path:
    # the conf goes under the temp folder: this test's own (tempfile caches the folder, so not via TMPDIR)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    root = tmp_path / "chromium"
    (root / "fonts").mkdir(parents=True)
    return root


def test_child_env_points_fontconfig_at_the_bundle_and_the_noto_fonts_from_a_conf_outside_the_bundle(
    tmp_path, monkeypatch
):
    # Given an unpacked bundle and a Noto fonts folder
    root, noto = _bundle(tmp_path, monkeypatch), tmp_path / "noto"
    noto.mkdir()
    # When the Chromium child's environment is made
    env = ChromiumInstall(root / "chromium", root).child_env({"INVOICE_FONTS_DIR": str(noto), "PATH": "/bin"})
    # Then fontconfig reads a conf that lists both folders, kept outside the bundle (a shared cache)
    conf = Path(env["FONTCONFIG_FILE"])
    text = conf.read_text()
    assert f"<dir>{root / 'fonts'}</dir>" in text
    assert f"<dir>{noto}</dir>" in text
    assert root not in conf.parents
    assert tmp_path / "tmp" in conf.parents
    assert "<cachedir>" in text and str(root) not in text.split("<cachedir>")[1]
    assert not (root / "fonts.conf").exists()


def test_the_same_folders_give_the_same_conf_and_cache_so_the_font_cache_is_built_once(tmp_path, monkeypatch):
    # Given one bundle and fonts folder
    root, noto = _bundle(tmp_path, monkeypatch), tmp_path / "noto"
    noto.mkdir()
    source = {"INVOICE_FONTS_DIR": str(noto)}
    # When two browsers are launched
    first = ChromiumInstall(root / "chromium", root).child_env(source)["FONTCONFIG_FILE"]
    second = ChromiumInstall(root / "chromium", root).child_env(source)["FONTCONFIG_FILE"]
    # Then they share one conf (and so one fontconfig cache)
    assert first == second


def test_fonts_are_found_in_opt_fonts_in_lambda_and_in_the_cache_locally(tmp_path):
    # Given a local fonts cache with the prepared folder
    (tmp_path / "noto-20220127").mkdir()
    # When the fonts are located locally, and in Lambda (where /opt/fonts is absent on this machine)
    local = locate_fonts({"FONTS_CACHE_DIR": str(tmp_path)})
    in_lambda = locate_fonts({"AWS_LAMBDA_FUNCTION_NAME": "render", "FONTS_CACHE_DIR": str(tmp_path)})
    # Then the local one is the cache folder, and Lambda looks only at /opt/fonts
    assert local == [tmp_path / "noto-20220127"]
    assert in_lambda == ([Path("/opt/fonts")] if Path("/opt/fonts").is_dir() else [])
