"""Repositories: the queries and writes the layers above need, one module per subject.

Every function takes an `AsyncSession` and keyword-only arguments and returns plain dicts
(datetimes stay aware `datetime` objects), so the API never handles ORM objects. Together
with the recorder these are the only code that commits.
"""
