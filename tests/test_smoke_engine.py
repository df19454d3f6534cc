def test_engine_roundtrip(engine):
    user = engine.add_user(1, "Ann", active=True)
    habit = engine.add_habit("Run")
    result = engine.complete(user, habit)
    assert result.streak == 1 and not result.already_done
    assert engine.complete(user, habit).already_done
