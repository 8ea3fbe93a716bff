package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// bulkChunk is the most rows one multi-row INSERT carries: large enough to
// amortize the per-statement cost of cgo and database/sql (a push of 1,000
// fields runs 7 log statements, not 19), small enough to stay far below
// SQLite's limit on bound parameters (32,766; 8 per log row).
const bulkChunk = 256

// chunkSizes are the statement sizes prepared per bulk insert: a remainder
// is written as a sum of powers of two, so every statement is prepared once.
var chunkSizes = []int{256, 128, 64, 32, 16, 8, 4, 2, 1}

// bulkSpec is one multi-row INSERT: head is "INSERT INTO t (a, b)", tail
// what follows the VALUES list, row the placeholders of one row: "?" for a
// value of the row, "?1".."?9" for a value shared by every row of the
// statement (bound once per statement, not once per row).
type bulkSpec struct {
	head, tail string
	row        []string
	shared     int // number of shared values
	cols       int // number of "?" in row
	queries    map[int]string
}

func newSpec(head, tail string, shared int, row ...string) bulkSpec {
	b := bulkSpec{head: head, tail: tail, row: row, shared: shared, queries: map[int]string{}}
	for _, p := range row {
		if p == "?" {
			b.cols++
		}
	}
	for _, n := range chunkSizes {
		b.queries[n] = b.build(n)
	}
	return b
}

// query returns the statement for rows rows.
func (b bulkSpec) query(rows int) string {
	if q, ok := b.queries[rows]; ok {
		return q
	}
	return b.build(rows)
}

var (
	logInsert = newSpec(`INSERT INTO change_log (seq, collection, id, field, value, hlc, base, batch, outcome)`, "",
		1, "?", "?", "?", "?", "?", "?", "?", "?1", "?")
	scopesInsert = newSpec(`INSERT OR IGNORE INTO row_scopes (collection, id, scope)`, "", 0, "?", "?", "?")
	bulkSpecs    = []bulkSpec{logInsert, scopesInsert}
)

func (b bulkSpec) build(rows int) string {
	var sb strings.Builder
	sb.WriteString(b.head)
	sb.WriteString(" VALUES ")
	n := b.shared
	for i := 0; i < rows; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for j, p := range b.row {
			if j > 0 {
				sb.WriteByte(',')
			}
			if p == "?" {
				n++
				sb.WriteString("?" + strconv.Itoa(n))
			} else {
				sb.WriteString(p)
			}
		}
		sb.WriteByte(')')
	}
	sb.WriteString(b.tail)
	return sb.String()
}

// bulk gathers the rows of one bulkSpec and executes them in chunks.
type bulk struct {
	spec    bulkSpec
	r       *Region
	tx      *sql.Tx
	shared  int
	args    []any // shared values, then the rows gathered
	execBuf []any
}

func newBulk(r *Region, tx *sql.Tx, spec bulkSpec, shared ...any) *bulk {
	if len(shared) != spec.shared {
		panic("store: bulk insert with the wrong number of shared values")
	}
	b := &bulk{spec: spec, r: r, tx: tx, shared: len(shared), args: make([]any, 0, len(shared)+spec.cols*bulkChunk)}
	b.args = append(b.args, shared...)
	return b
}

// add appends one row; it executes a full chunk when one is gathered.
func (b *bulk) add(ctx context.Context, vals ...any) error {
	b.args = append(b.args, vals...)
	if len(b.args)-b.shared == b.spec.cols*bulkChunk {
		return b.flush(ctx)
	}
	return nil
}

// flush executes the rows gathered so far.
func (b *bulk) flush(ctx context.Context) error {
	cols := b.spec.cols
	rows := (len(b.args) - b.shared) / cols
	off := 0
	for _, size := range chunkSizes {
		for rows-off >= size {
			st, err := b.r.stmt(ctx, b.tx, b.spec.query(size))
			if err != nil {
				return err
			}
			args := b.args[:b.shared+size*cols]
			if off > 0 {
				b.execBuf = append(append(b.execBuf[:0], b.args[:b.shared]...), b.args[b.shared+off*cols:b.shared+(off+size)*cols]...)
				args = b.execBuf
			}
			if err := execFused(ctx, st, args...); err != nil {
				return err
			}
			off += size
		}
	}
	clear(b.args[b.shared:])
	b.args = b.args[:b.shared]
	return nil
}

// execFused runs a statement that returns no rows through Query rather
// than Exec: go-sqlite3 resets the statement, binds every argument and
// takes the first step (which runs an INSERT to its end) in one cgo call,
// with text copied once into a buffer of the statement, where Exec makes
// one cgo call and one copy per argument. A push binds about 9,000
// arguments; per argument calls were 18 % of its CPU (docs/benchmarks.md).
func execFused(ctx context.Context, st *sql.Stmt, args ...any) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	return rows.Close()
}

// writerQueries lists every statement a push runs, to prepare them once.
func writerQueries() []string {
	qs := []string{qLookupRows, qLookupFields, qStaleLogged, qConflict, qQuarantine, qScopeSum, qBatchGet, qBatchPut, qLogBatch, qFieldsFromLog}
	for _, b := range bulkSpecs {
		for _, n := range chunkSizes {
			qs = append(qs, b.query(n))
		}
	}
	return qs
}
