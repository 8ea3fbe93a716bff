-- row_scopes_scope is unique ((collection, id, scope) is the key): knowing
-- it, SQLite reads a scope's fields in key order (scope, collection, id,
-- field) straight from the indexes, without sorting, when a pull fills a
-- new scope.
DROP INDEX row_scopes_scope;
CREATE UNIQUE INDEX row_scopes_scope ON row_scopes (scope, collection, id);
