"""The machinery behind the book's block contract: registry, pages, runner, records."""
