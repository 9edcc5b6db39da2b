"""The migrated schema is exactly the models, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from ecert.db import alembic_config, load_models, migrate


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, load_models())
    assert differences == []


def test_migrating_again_changes_nothing(engine: Engine) -> None:
    migrate(engine)
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    assert current == heads


def test_each_package_keeps_its_own_branch() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    for head in script.get_revisions(script.get_heads()):
        labels = set()
        for revision in script.iterate_revisions(head.revision, "base"):
            labels |= set(revision.branch_labels or ())
        assert len(labels) == 1, f"head {head.revision} mixes branches {labels}"
