"""The config file as a library: reading, shape errors with lines, the private-token rule, and
writes that keep comments, other keys and the file mode."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_devops import config, config_edit
from cli_devops.config import ConfigError

SAMPLE = """\
# my environments
current-context = "prod"  # the usual one

[contexts.prod]
cp-url = "http://10.0.0.5:8080"
cpu-threshold = 85    # stricter in prod

[contexts.staging]
cp-url = "staging-cpx:8080"
strict = true
"""


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_default_path_follows_xdg(tmp_path):
    assert config.default_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "cli_devops" / "config.toml"
    )
    home = Path.home() / ".config" / "cli_devops" / "config.toml"
    assert config.default_path({}) == home
    assert config.default_path({"XDG_CONFIG_HOME": "relative/dir"}) == home


def test_reads_contexts_and_current(tmp_path):
    loaded = config.load(write(tmp_path / "c.toml", SAMPLE))
    assert loaded.exists
    assert loaded.current == "prod"
    assert loaded.contexts["prod"].values == {"cp-url": "http://10.0.0.5:8080", "cpu-threshold": 85}
    assert loaded.contexts["prod"].lines == {"cp-url": 5, "cpu-threshold": 6}
    assert loaded.contexts["staging"].header_line == 8
    assert loaded.selected(None).name == "prod"
    assert loaded.selected("staging").values["strict"] is True


def test_missing_file_is_no_contexts_unless_required(tmp_path):
    loaded = config.load(tmp_path / "none.toml")
    assert not loaded.exists
    assert loaded.selected(None) is None
    with pytest.raises(ConfigError, match=r"none.toml \(no such file\); known contexts: none"):
        loaded.selected("prod")
    with pytest.raises(ConfigError, match=r"config file .*none.toml does not exist"):
        config.load(tmp_path / "none.toml", required=True)


def test_unknown_context_lists_the_known_ones(tmp_path):
    loaded = config.load(write(tmp_path / "c.toml", SAMPLE))
    with pytest.raises(ConfigError) as caught:
        loaded.selected("qa")
    assert str(caught.value) == (
        f"no context named 'qa' in {tmp_path / 'c.toml'}; known contexts: prod, staging"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('current-context = "prod"\n[contexts.prod\n', "line 2: not valid TOML: "),
        ("[contexts.prod]\ncp-url = 'x'\n[contexts.prod]\n", "not valid TOML: "),
        ('colour = "red"\n', "line 1: unknown key 'colour'; expected current-context, contexts"),
        ("current-context = 3\n", "line 1: key 'current-context': must be a string"),
        ("contexts = 3\n", "key 'contexts': must be a table of contexts"),
        ('[contexts]\nprod = "x"\n', "line 2: context 'prod': must be a table"),
        (
            "[contexts.prod]\n\nretries = [1, 2]\n",
            "line 3: context 'prod', key 'retries': must be a string, number or true/false, "
            "not a array",
        ),
        (
            "[contexts.'a b']\nx.y = 1\n",
            "line 2: context 'a b', key 'x': must be a string, number or true/false, not a table",
        ),
        ('current-context = "gone"\n[contexts.prod]\n', "line 1: current-context 'gone' is not"),
    ],
)
def test_invalid_file_is_one_error_naming_file_line_and_key(tmp_path, text, message):
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as caught:
        config.load(path).selected(None)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_invalid_value_names_line_and_key(tmp_path):
    loaded = config.load(write(tmp_path / "c.toml", SAMPLE))
    error = loaded.invalid(loaded.contexts["prod"], "cpu-threshold", "must be at most 100")
    assert str(error) == (
        f"{tmp_path / 'c.toml'}, line 6: context 'prod', key 'cpu-threshold': must be at most 100"
    )


def test_nesting_too_deep_is_one_error(tmp_path):
    path = write(tmp_path / "deep.toml", "[contexts.a]\nx = " + "[" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"deep.toml: not valid TOML: nested too deeply"):
        config.load(path)


def test_not_utf8_or_too_big_or_a_directory(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"cp-url = '\xff'\n")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text"):
        config.load(bad)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (config.MAX_FILE_SIZE + 1))
    with pytest.raises(ConfigError, match=r"larger than 1024 KiB"):
        config.load(big)
    with pytest.raises(ConfigError, match=r"cannot read config file|not a regular file"):
        config.load(tmp_path)


TOKEN_FILE = '[contexts.prod]\ncp-url = "h:1"\ntoken = "s3cr3t-value"\n'


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_token_in_a_file_others_can_read_is_refused(tmp_path, mode):
    path = write(tmp_path / "c.toml", TOKEN_FILE, mode)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    message = str(caught.value)
    assert message == (
        f"config file {path} holds a token and is readable by group or others "
        f"(mode {mode:04o}); make it private: chmod 600 {path}"
    )
    assert "s3cr3t" not in message


def test_token_in_a_private_file_is_read_and_never_in_repr(tmp_path):
    loaded = config.load(write(tmp_path / "c.toml", TOKEN_FILE, 0o600))
    assert loaded.contexts["prod"].values["token"] == "s3cr3t-value"
    assert "s3cr3t" not in repr(loaded)
    assert "s3cr3t" not in config.render(loaded)
    assert 'token = "<redacted>"' in config.render(loaded)


def test_render_escapes_what_a_terminal_would_obey(tmp_path):
    text = '[contexts."we\\u001bird"]\ncp-url = "a\\u001b[2Jb"\n'
    rendered = config.render(config.load(write(tmp_path / "c.toml", text)))
    assert "\x1b" not in rendered
    assert rendered == '[contexts."we\\u001bird"]\ncp-url = "a\\u001b[2Jb"\n'


def test_set_use_delete_round_trip_keeps_comments_other_keys_and_mode(tmp_path):
    path = write(tmp_path / "c.toml", SAMPLE, 0o640)
    assert config_edit.set_context(path, "qa", {"cp-url": "http://127.0.0.1:9", "retries": 1})
    assert not config_edit.set_context(path, "prod", {"cpu-threshold": 70, "strict": True})
    config_edit.use_context(path, "qa")
    text = path.read_text()
    assert "# my environments" in text
    assert "# stricter in prod" in text
    assert "cpu-threshold = 70    # stricter in prod" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    loaded = config.load(path)
    assert loaded.current == "qa"
    assert loaded.contexts["qa"].values == {"cp-url": "http://127.0.0.1:9", "retries": 1}
    assert loaded.contexts["prod"].values["strict"] is True
    assert loaded.contexts["staging"].values == {"cp-url": "staging-cpx:8080", "strict": True}
    assert config_edit.delete_context(path, "qa")
    assert not config_edit.delete_context(path, "staging")
    loaded = config.load(path)
    assert loaded.current is None
    assert list(loaded.contexts) == ["prod"]
    assert "# my environments" in path.read_text()
    # no temporary file left; the lock file stays, as a lock others may be waiting on must
    assert sorted(p.name for p in tmp_path.iterdir()) == [".c.toml.lock", "c.toml"]


def test_a_new_file_is_private_and_its_directory_too(tmp_path):
    path = tmp_path / "cfg" / "cli_devops" / "config.toml"
    config_edit.set_context(path, "prod", {"cp-url": "h:1", "token": "t"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.load(path).contexts["prod"].values["token"] == "t"


def test_adding_a_token_to_a_file_others_can_read_is_refused(tmp_path):
    path = write(tmp_path / "c.toml", SAMPLE, 0o644)
    with pytest.raises(ConfigError, match=r"chmod 600"):
        config_edit.set_context(path, "prod", {"token": "t"})
    assert path.read_text() == SAMPLE


def test_writes_follow_a_symbolic_link(tmp_path):
    real = write(tmp_path / "dotfiles.toml", SAMPLE, 0o600)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    config_edit.use_context(link, "staging")
    assert link.is_symlink()
    assert config.load(real).current == "staging"


def test_unknown_context_cannot_be_used_or_deleted(tmp_path):
    path = write(tmp_path / "c.toml", SAMPLE)
    for write_op in (config_edit.use_context, config_edit.delete_context):
        with pytest.raises(
            ConfigError, match=r"no context named 'qa'.*known contexts: prod, staging"
        ):
            write_op(path, "qa")
    assert path.read_text() == SAMPLE


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "a\x1b", "a/b", "é"])
def test_context_names_are_checked(tmp_path, name):
    with pytest.raises(ConfigError, match=r"invalid context name"):
        config_edit.set_context(tmp_path / "c.toml", name, {})
    assert not (tmp_path / "c.toml").exists()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=300))
def test_any_text_is_a_config_or_one_config_error(tmp_path, text):
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    path.chmod(0o600)
    try:
        loaded = config.load(path)
    except ConfigError as err:
        assert str(err).startswith(("config file", str(path)))
    else:
        assert "\x1b" not in config.render(loaded)


_scalar = st.one_of(st.text(max_size=20), st.integers(-(2**63), 2**63 - 1), st.booleans(),
                    st.floats(allow_nan=False))  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z-]{0,10}", fullmatch=True), _scalar, max_size=5))
def test_written_values_read_back_equal(tmp_path, values):
    path = tmp_path / "rt.toml"
    path.unlink(missing_ok=True)
    config_edit.set_context(path, "prod", values)
    assert config.load(path).contexts["prod"].values == values
