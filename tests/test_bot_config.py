"""bot.config: the example file is complete and valid; every mistake is refused by name; the token stays secret."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from bot.config import (Access, Caps, Config, ConfigError, Cooldown, Limits, RoleLimit, Storage, load_config,
                        old_scale_weights)
from engine import ParamError, Settings
from engine.memory import predict_peak_bytes
from engine.transfer import Painted, painted

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
SECRET = "MTIzNDU2.secret-token-value"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_is_valid_and_shows_the_defaults() -> None:
    config = load_config(EXAMPLE, env={"DISCORD_TOKEN": SECRET})
    assert config == dataclasses.replace(Config(), token=SECRET)


def test_example_documents_every_setting() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for cls in (Config, Access, Limits, RoleLimit, Cooldown, Storage):
        for f in dataclasses.fields(cls):
            if f.name != "defaults":
                pattern = rf"^#? ?({f.name} = |\[{f.name}\]|\[\[limits\.{f.name}\]\])"
                assert re.search(pattern, text, re.M), f"{cls.__name__}.{f.name} undocumented"
    assert "[defaults]" in text


def test_full_file(tmp_path: Path) -> None:
    path = write(tmp_path, f"""
token = "{SECRET}"
prefix = "?"
device = "cuda:1"
workers = 2
log_level = "debug"
progress_interval = 2
owner_ids = [42]
[access]
guilds = [1, 2]
channels = [3]
moderator_roles = [4]
[limits]
max_size = 2048
job_timeout = 60
[[limits.roles]]
id = 7
max_size = 4096
[[limits.roles]]
id = 8
max_steps = 5000
[cooldown]
commands = 3
seconds = 10
[defaults]
size = 256
steps_per_epoch = 5
preserve_color = "luminance"
""")
    config = load_config(path, env={})
    assert (config.token, config.prefix, config.device, config.workers) == (SECRET, "?", "cuda:1", 2)
    assert config.log_level == "DEBUG" and config.progress_interval == 2.0 and config.owner_ids == {42}
    assert config.access == Access(frozenset({1, 2}), frozenset({3}), frozenset({4}))
    assert config.cooldown == Cooldown(commands=3, buttons=5, seconds=10.0)
    assert config.limits.job_timeout == 60.0 and config.limits.roles == (RoleLimit(7, 4096), RoleLimit(8, None, 5000))
    assert config.defaults == Settings.parse({"size": 256, "steps_per_epoch": 5, "preserve_color": "luminance"})


def test_environment_token_wins(tmp_path: Path) -> None:
    path = write(tmp_path, 'token = "from-file"')
    assert load_config(path, env={"DISCORD_TOKEN": SECRET}).token == SECRET
    assert load_config(path, env={}).token == "from-file"


@pytest.mark.parametrize("text, message", [
    ('prefix = "!"', "no bot token"),
    ('token = "x"\nprefixx = "!"', "unknown key 'prefixx' — did you mean prefix?"),
    ('token = "x"\n[limits]\nmax_step = 5', "unknown key 'limits.max_step' — did you mean limits.max_steps?"),
    ('token = "x"\n[acess]\nguilds = []', "unknown key 'acess' — did you mean access?"),
    ('token = "x"\nworkers = "2"', "workers must be an integer, not string"),
    ('token = "x"\nworkers = 0', "workers must be at least 1"),
    ('token = "x"\nworkers = true', "workers must be an integer, not boolean"),
    ('token = "x"\nprogress_interval = "fast"', "progress_interval must be a number, not string"),
    ('token = "x"\n[access]\nguilds = 5', "access.guilds must be a list"),
    ('token = "x"\n[access]\nchannels = [1, "two"]', "access.channels[1] must be an integer, not string"),
    ('token = "x"\nlimits = 3', "limits must be a table"),
    ('token = "x"\n[[limits.roles]]\nmax_size = 9', "limits.roles[0].id is required"),
    ('token = "x"\ndevice = "gpu"', "device must be auto, cpu, mps, cuda or cuda:N"),
    ('token = "x"\nlog_level = "loud"', "log_level must be one of"),
    ('token = "x"\nprefix = ""', "prefix must be non-empty"),
    ('token = "x"\ndefaults = 3', "[defaults] must be a table"),
    ('token = "x"\n[defaults]\nstile_weight = 1', "[defaults] unknown setting 'stile_weight' — did you mean style_weight?"),
    ('token = "x"\n[defaults]\nsteps = "many"', "[defaults] steps must be a number"),
    ('token = "x"\n[defaults]\nsize = 2048', "[defaults] size = 2048 is over [limits] max_size = 1024 — lower the "
                                             "one or raise the other"),
    ('token = "x"\n[defaults]\nsteps = 1001', "[defaults] steps = 1001 is over [limits] max_steps = 1000"),
    ('token = "x"\n[defaults]\nstyle_scale = 3', "[defaults] style_scale = 3 paints the style pictures at 1536 px "
                                                 "(512 px × 3), over [limits] max_style_size = 1024"),
    ('token = "x"\nprogress_interval = 0.5', "progress_interval must be at least 2"),
    ('token = "x"\n[defaults]\nsize = 512\nguilds = [1]', "[defaults] holds painting settings only: guilds belongs "
                                                         "under [access]"),
    ('token = "x"\n[access]\nguilds = []\nsize = 512', "unknown key 'access.size' — size is a painting setting: it "
                                                     "goes under [defaults]"),
    ('token = "x"\n[defaults]\nsize = 512\nworkers = 2', "workers belongs at the top of the file, above every [table]"),
    ('token = "x"\nworkers = ', "not valid TOML"),
])
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file_and_no_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", env={"DISCORD_TOKEN": SECRET})
    assert load_config(None, env={"DISCORD_TOKEN": SECRET}).token == SECRET


def test_token_from_a_file(tmp_path: Path) -> None:
    """DISCORD_TOKEN_FILE (Docker secrets) names a file holding the token; it wins over `token` in the file."""
    secret = tmp_path / "discord_token"
    secret.write_text(SECRET + "\n", encoding="utf-8")  # secrets usually end with a newline
    config_file = write(tmp_path, 'token = "from-the-file"')
    assert load_config(config_file, env={"DISCORD_TOKEN_FILE": str(secret)}).token == SECRET
    with pytest.raises(ConfigError, match="set DISCORD_TOKEN or DISCORD_TOKEN_FILE, not both"):
        load_config(None, env={"DISCORD_TOKEN": SECRET, "DISCORD_TOKEN_FILE": str(secret)})
    with pytest.raises(ConfigError, match=r"DISCORD_TOKEN_FILE: cannot read .*missing \(No such file"):
        load_config(None, env={"DISCORD_TOKEN_FILE": str(tmp_path / "missing")})
    secret.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no bot token"):
        load_config(None, env={"DISCORD_TOKEN_FILE": str(secret)})


def test_token_never_shown(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, f'token = "{SECRET}"'), env={})
    assert SECRET not in repr(config) and SECRET not in str(config) and "token" not in repr(config)
    with pytest.raises(ConfigError) as info:  # a mistake next to the token does not quote it
        load_config(write(tmp_path, f'token = "{SECRET}"\nworkers = "{SECRET}"'), env={})
    assert SECRET not in str(info.value)


def test_caps_by_role() -> None:
    limits = Limits(max_size=512, max_steps=100, roles=(RoleLimit(1, max_size=2048), RoleLimit(2, max_steps=900),
                                                       RoleLimit(3, max_size=256, max_styles=5)))
    assert limits.caps_for([]) == Caps(512, 100, 3, 512)
    assert limits.caps_for([1, 3]) == Caps(2048, 100, 5, 2048)  # the highest cap of all one's roles
    assert limits.caps_for([1, 2]) == Caps(2048, 900, 3, 2048)
    caps = Caps(512, 100, 3, 512)
    caps.check(Settings.parse({"size": 512, "steps": 100}))
    with pytest.raises(ParamError, match=r"size=600 is over this server's cap of 512 .* size=512 or less"):
        caps.check(Settings.parse({"size": 600}))
    with pytest.raises(ParamError, match="steps=101 is over"):
        caps.check(Settings.parse({"size": 64, "num_epoch": 1, "steps_per_epoch": 101}))


def test_style_resolution_is_capped_too() -> None:
    """size=1024 style_scale=4 would send every style picture through VGG at 4096 px."""
    limits = Limits(max_size=1024, roles=(RoleLimit(1, max_style_size=3000), RoleLimit(2, max_size=2048)))
    with pytest.raises(ParamError, match="style_scale=4 at size=1024 paints the style pictures at 4096 px, over this "
                                         "server's cap of 1024 for you — ask for style_scale=1 or less"):
        limits.caps_for([]).check(Settings.parse({"size": 1024, "style_scale": 4}))
    limits.caps_for([]).check(Settings.parse({"size": 256, "style_scale": 4}))
    assert limits.caps_for([1]).max_style_size == 3000
    assert limits.caps_for([2]).max_style_size == 2048  # never below the member's size cap
    with pytest.raises(ParamError, match="ask for style_scale=2.92 or less"):
        limits.caps_for([1]).check(Settings.parse({"size": 1024, "style_scale": 3}))
    assert Limits(max_size=512, max_style_size=2048).caps_for([]).max_style_size == 2048


def test_a_pixel_count_on_a_panorama_is_judged_at_the_style_size_it_paints() -> None:
    """pixels=1048576 is the square 1024² — but on a 32:1 photo the engine paints it 4096 px long and its
    style pictures at 4096 px: the cap must refuse what will be painted (issue 22, 2), and say what fits."""
    caps = Limits(max_size=1024).caps_for([])
    settings = Settings.parse({"pixels": 1048576})
    caps.check(settings)  # the photo is not known yet: judged as the square
    panorama = (3200, 100)
    assert painted(settings, panorama) == Painted((4096, 128), 4096)
    with pytest.raises(ParamError, match=r"pixels=1048576 on this 32:1 photo \(painted 4096×128\) with style_scale=1 "
                                         r"paints the style pictures at 4096 px, over this server's cap of 1024 for you "
                                         r"— ask for pixels=32768 or style_scale=0.25 or less"):
        caps.check(settings, panorama)
    caps.check(Settings.parse({"pixels": 32768}), panorama)  # the count it offers fits
    caps.check(Settings.parse({"pixels": 1048576, "style_scale": 0.25}), panorama)  # and so does the scale
    for shape in ((3200, 100), (100, 3200), (1000, 1000), (1500, 1000)):  # the memory model counts the same sizes
        by_side = Settings.parse({"size": max(painted(settings, shape).content)})
        assert predict_peak_bytes(settings, shape, 1) == predict_peak_bytes(by_side, shape, 1)


def test_access() -> None:
    assert Access().allows(None, 5) and Access().allows(1, 5)
    only = Access(guilds=frozenset({1}), channels=frozenset({5}))
    assert only.allows(1, 5) and not only.allows(1, 6) and not only.allows(2, 5) and not only.allows(None, 5)


def test_storage_and_its_environment_override(tmp_path: Path) -> None:
    path = write(tmp_path, 'token = "x"\n[storage]\ndata_dir = "/srv/stylize"\nkeep_days = 0\nmax_megabytes = 100')
    assert load_config(path, env={}).storage == Storage("/srv/stylize", 0.0, 100)
    assert load_config(path, env={"STYLIZE_DATA_DIR": "/data"}).storage.data_dir == "/data"
    assert load_config(None, env={"DISCORD_TOKEN": SECRET}).storage == Storage("./data", 7.0, 2048)
    with pytest.raises(ConfigError, match="storage.keep_days must be at least 0"):
        load_config(write(tmp_path, 'token = "x"\n[storage]\nkeep_days = -1'), env={})


def test_every_mistake_is_named_at_once(tmp_path: Path) -> None:
    """One start-up names them all, so that one edit of the file fixes them all."""
    path = write(tmp_path, 'token = "x"\nprefx = "?"\nworkers = "two"\n[limits]\nmax_step = 5\n'
                           '[defaults]\nsize = 4000\nstile_weight = 1\nguilds = [1]')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems == (
        f"{path}: unknown key 'prefx' — did you mean prefix?",
        f"{path}: workers must be an integer, not string",
        f"{path}: unknown key 'limits.max_step' — did you mean limits.max_steps?",
        f"{path}: [defaults] unknown setting 'stile_weight' — did you mean style_weight? (see `help` for the list)",
        f"{path}: [defaults] holds painting settings only: guilds belongs under [access] — in TOML a key belongs "
        "to the [table] above it, so move the line up there",
        f"{path}: [defaults] size = 4000 is over [limits] max_size = 1024 — lower the one or raise the other "
        "(roles' higher caps go under [[limits.roles]])")
    assert str(info.value) == f"{path}: 6 problems\n" + "\n".join(
        "  - " + problem.removeprefix(f"{path}: ") for problem in info.value.problems)


@pytest.mark.parametrize("line, warned", [("style_weight = 100", "style_weight = 100"), ("tv_weight = 50", "tv_weight = 50"),
                                          ("style_weight = 30", None), ("tv_weight = 5", None)])
def test_weights_on_the_old_scale_are_warned_about(tmp_path: Path, line: str, warned: str | None) -> None:
    """Before 1.0.0 the weights meant a tenth of what they mean now (defaults 100 and 50, now 10 and 5)."""
    warnings = old_scale_weights(load_config(write(tmp_path, f'token = "x"\n[defaults]\n{line}'), env={}))
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warnings[0].startswith(f"[defaults] {warned} looks like the scale before "
                                                             "version 1.0.0") and "divide it by 10" in warnings[0]
