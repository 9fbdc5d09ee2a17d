from tests.conftest import SupzHost, sleep_program


def test_added_entry_runs(host: SupzHost) -> None:
    host.add("app1", sleep_program("app1"))
    assert host.states() == {"app1:app1": "RUNNING"}
