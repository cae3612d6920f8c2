import pytest


def test_cli_version_and_bad_flag_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    from hostwatch.cli import main

    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out.startswith("hostwatch 0.")
    with pytest.raises(SystemExit) as bad:
        main(["ps", "--no-such-flag"])
    assert bad.value.code == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--no-such-flag" in err
