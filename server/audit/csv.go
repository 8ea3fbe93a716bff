package audit

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// CSVHeader is the first row WriteCSV writes.
var CSVHeader = []string{"id", "at", "user_id", "username", "role", "device_id", "action",
	"region", "target_kind", "target_id", "detail", "ip", "request_id"}

// WriteCSV writes entries as CSV with a header row. A text cell that a
// spreadsheet would take for a formula (starting with =, +, -, @, tab or
// carriage return) is prefixed with a single quote.
func WriteCSV(w io.Writer, entries []Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("audit csv: %w", err)
	}
	for _, e := range entries {
		row := []string{
			strconv.FormatInt(e.ID, 10),
			e.At.UTC().Format(TimeFormat),
			cell(e.UserID), cell(e.Username), cell(e.Role), cell(e.DeviceID), cell(e.Action),
			cell(e.Region), cell(e.TargetKind), cell(e.TargetID), cell(string(e.Detail)),
			cell(e.IP), cell(e.RequestID),
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("audit csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("audit csv: %w", err)
	}
	return nil
}

func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
