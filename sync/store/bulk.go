package store

import (
	"context"
	"database/sql"
	"strings"
)

// bulkChunk is the number of rows per multi-row INSERT: large enough to
// amortize the per-statement cost of cgo and database/sql, small enough to
// stay far below SQLite's limit on bound parameters.
const bulkChunk = 64

// bulk gathers rows for one multi-row INSERT statement and executes it in
// chunks. head is "INSERT INTO t (a, b)", tail what follows the VALUES list.
type bulk struct {
	r    *Region
	tx   *sql.Tx
	head string
	tail string
	cols int
	args []any
}

func newBulk(r *Region, tx *sql.Tx, head, tail string, cols int) *bulk {
	return &bulk{r: r, tx: tx, head: head, tail: tail, cols: cols, args: make([]any, 0, cols*bulkChunk)}
}

func (b *bulk) query(rows int) string {
	var sb strings.Builder
	one := "(" + strings.Repeat("?,", b.cols-1) + "?)"
	sb.Grow(len(b.head) + len(b.tail) + rows*(len(one)+1) + 8)
	sb.WriteString(b.head)
	sb.WriteString(" VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(one)
	}
	sb.WriteString(b.tail)
	return sb.String()
}

// add appends one row; it executes a full chunk when one is gathered.
func (b *bulk) add(ctx context.Context, vals ...any) error {
	b.args = append(b.args, vals...)
	if len(b.args) == b.cols*bulkChunk {
		return b.flush(ctx)
	}
	return nil
}

// flush executes the rows gathered so far.
func (b *bulk) flush(ctx context.Context) error {
	rows := len(b.args) / b.cols
	if rows == 0 {
		return nil
	}
	// Full chunks and small remainders use statements prepared once per
	// region; other sizes are rare enough to prepare per call.
	st, err := b.r.stmt(ctx, b.tx, b.query(rows))
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, b.args...)
	clear(b.args)
	b.args = b.args[:0]
	return err
}
