"""An ORM workload (SQLAlchemy 2.x + PyMySQL) for tests/orm.rs.

Parents, children and grandchildren with foreign keys, inserted the way
SQLAlchemy does by default on MariaDB >= 10.5 (multi-row INSERT ... VALUES
... RETURNING id, its "insertmanyvalues" mode), then updated, deleted and
rolled back from several threads at once. Prints JSON: how many statements
used RETURNING (the test asserts SQLAlchemy really used them) and row counts.

usage: orm.py HOST PORT USER PASSWORD DATABASE THREADS
"""

import json
import sys
import threading
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Numeric,
    String,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Parent(Base):
    __tablename__ = "parent"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    created: Mapped[datetime] = mapped_column(DateTime)
    children: Mapped[list["Child"]] = relationship(
        back_populates="parent", cascade="all, delete-orphan"
    )


class Child(Base):
    __tablename__ = "child"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("parent.id"))
    label: Mapped[str] = mapped_column(String(60))
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    parent: Mapped[Parent] = relationship(back_populates="children")
    toys: Mapped[list["Toy"]] = relationship(
        back_populates="child", cascade="all, delete-orphan"
    )


class Toy(Base):
    __tablename__ = "toy"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id"))
    kind: Mapped[str] = mapped_column(String(30))
    child: Mapped[Child] = relationship(back_populates="toys")


statements = []
lock = threading.Lock()


def workload(engine, k, errors):
    try:
        for i in range(6):
            # Parents with children and toys: SQLAlchemy batches each table's
            # rows into one INSERT ... VALUES (...), (...) RETURNING id.
            with Session(engine) as s, s.begin():
                for p in range(4):
                    parent = Parent(name=f"p{k}-{i}-{p}", created=datetime(2024, 1, 1 + p, 12, k, i))
                    for c in range(3):
                        child = Child(label=f"c{k}-{i}-{p}-{c}", amount=Decimal(f"{c}.{k}{i}"))
                        child.toys = [Toy(kind=f"t{t}") for t in range(2)]
                        parent.children.append(child)
                    s.add(parent)
            # Updates through the ORM.
            with Session(engine) as s, s.begin():
                rows = s.scalars(
                    select(Parent).where(Parent.name.like(f"p{k}-{i}-%")).order_by(Parent.id)
                ).all()
                rows[0].name = rows[0].name + " (renamed)"
                for child in rows[1].children:
                    child.amount = child.amount * 2
                # A delete with cascades: toys, children, then the parent.
                s.delete(rows[2])
                # More rows for an existing parent.
                rows[3].children.append(Child(label="late", amount=Decimal("9.99")))
            # A transaction that inserts (RETURNING inside it) and rolls back.
            s = Session(engine)
            try:
                s.begin()
                doomed = Parent(name=f"rolled back {k}-{i}", created=datetime(2020, 1, 1))
                doomed.children = [Child(label="never", amount=Decimal("1.00")) for _ in range(2)]
                s.add(doomed)
                s.flush()
                s.rollback()
            finally:
                s.close()
    except Exception as e:  # reported to the test, which fails on it
        errors.append(f"thread {k}: {e!r}")


def main():
    host, port, user, password, db, threads = sys.argv[1:7]
    engine = create_engine(
        f"mysql+pymysql://{user}:{password}@{host}:{port}/{db}",
        pool_size=int(threads),
    )

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        with lock:
            statements.append(statement)

    Base.metadata.create_all(engine)
    errors = []
    workers = [
        threading.Thread(target=workload, args=(engine, k, errors)) for k in range(int(threads))
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with Session(engine) as s:
        counts = {
            t.__tablename__: s.scalar(select(func.count()).select_from(t))
            for t in (Parent, Child, Toy)
        }
    returning = [st for st in statements if " RETURNING " in st.upper().replace("\n", " ")]
    multirow = [st for st in returning if "), (" in st]
    print(
        json.dumps(
            {
                "dialect_returning": engine.dialect.insert_returning,
                "insertmanyvalues": engine.dialect.use_insertmanyvalues,
                "returning_statements": len(returning),
                "multirow_returning": len(multirow),
                "sample": multirow[:1],
                "counts": counts,
                "errors": errors,
            }
        )
    )


if __name__ == "__main__":
    main()
