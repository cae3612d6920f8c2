import argparse

import pytest

from hostwatch import cli


def _verbs(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def test_each_group_registers_exactly_the_verbs_it_is_listed_under() -> None:
    """A verb missing from its group's list would be parsed by the full parser (slow); a verb listed in
    the wrong group would be "invalid choice"."""
    seen: set[str] = set()
    for verbs, register in cli._groups():
        parser = argparse.ArgumentParser()
        register(parser.add_subparsers())
        assert _verbs(parser) == set(verbs), register.__name__
        assert not seen & verbs
        seen |= verbs
    assert _verbs(cli.build_parser()) == seen


def test_a_verb_gets_only_its_own_group() -> None:
    assert _verbs(cli._parser_for(["run", "--rm", "x"])) == set(cli.RUNTIME_VERBS)
    assert _verbs(cli._parser_for(["search", "--grep", "x"])) == {"index", "search"}
    assert _verbs(cli._parser_for(["--version"])) == set()  # it imports no component
    assert _verbs(cli._parser_for(["--help"])) == _verbs(cli.build_parser())
    assert _verbs(cli._parser_for(["no-such-verb"])) == _verbs(cli.build_parser())


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
