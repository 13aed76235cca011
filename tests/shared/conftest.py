"""In-process fixtures for the shared library's broker tier: a fresh database per test."""

import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient

from shared.store.mongo import Database, Document, make_client
from shared.store.unit_of_work import UnitOfWork


@pytest.fixture
async def mongo_client(mongodb_url: str) -> AsyncIterator[AsyncMongoClient[Document]]:
    client = make_client(mongodb_url, app_name="whistle-tests")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def db(mongo_client: AsyncMongoClient[Document]) -> AsyncIterator[Database]:
    database = mongo_client[f"t{uuid.uuid4().hex[:10]}_shared"]
    try:
        yield database
    finally:
        await mongo_client.drop_database(database.name)


@pytest.fixture
def uow(mongo_client: AsyncMongoClient[Document], db: Database) -> UnitOfWork:
    return UnitOfWork(mongo_client, db)
