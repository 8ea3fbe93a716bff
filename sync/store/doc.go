// Package store is the SQLite adapter of Samenplan: per-region case
// databases that merge field-level last-writer-wins changes and keep every
// write in an append-only log, and the main database that holds accounts,
// devices and the audit log.
package store
