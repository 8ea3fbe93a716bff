package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	samenplan "github.com/samenplan/samenplan"
	"github.com/samenplan/samenplan/server/audit"
)

// Device is a phone or laptop a user logged in on. Each login makes one.
type Device struct {
	ID        string     `json:"id"`
	UserID    string     `json:"user_id"`
	Username  string     `json:"username"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	LastSeen  time.Time  `json:"last_seen"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
}

// Revoked reports whether d is revoked.
func (d Device) Revoked() bool { return d.RevokedAt != nil }

// lastSeenEvery is how often last_seen of one device is written at most.
const lastSeenEvery = time.Minute

const deviceColumns = `d.id, d.user_id, u.username, d.name, d.created_at, d.last_seen, d.revoked_at, d.revoked_by`

func scanDevice(row scanner) (Device, error) {
	var d Device
	var created, seen string
	var revoked sql.NullString
	if err := row.Scan(&d.ID, &d.UserID, &d.Username, &d.Name, &created, &seen, &revoked, &d.RevokedBy); err != nil {
		return Device{}, err
	}
	var err error
	if d.CreatedAt, err = parseTime(created); err != nil {
		return Device{}, fmt.Errorf("device %s: %w", d.ID, err)
	}
	if d.LastSeen, err = parseTime(seen); err != nil {
		return Device{}, fmt.Errorf("device %s: %w", d.ID, err)
	}
	if revoked.Valid {
		t, err := parseTime(revoked.String)
		if err != nil {
			return Device{}, fmt.Errorf("device %s: %w", d.ID, err)
		}
		d.RevokedAt = &t
	}
	return d, nil
}

// ListDevices returns the devices of user userID, or of everyone when
// userID is "", newest first, revoked ones included.
func (s *Service) ListDevices(ctx context.Context, userID string) ([]Device, error) {
	q := `SELECT ` + deviceColumns + ` FROM devices d JOIN users u ON u.id = d.user_id`
	var args []any
	if userID != "" {
		q += ` WHERE d.user_id = ?`
		args = append(args, userID)
	}
	q += ` ORDER BY d.created_at DESC, d.id DESC`
	rows, err := s.db.Reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// GetDevice returns device id, or not_found.
func (s *Service) GetDevice(ctx context.Context, id string) (Device, error) {
	d, err := scanDevice(s.db.Reader.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, errDeviceNotFound
	} else if err != nil {
		return Device{}, fmt.Errorf("get device: %w", err)
	}
	return d, nil
}

var errDeviceNotFound = samenplan.Errorf(samenplan.ENOTFOUND, "Toestel niet gevonden / device not found")

// RevokeDevice revokes device deviceID and every refresh token of it: from
// then on every request with its access tokens gets device_revoked, and the
// device must wipe its data. by must own the device or be an admin; anyone
// else gets not_found, as for an unknown device. Revoking a revoked device
// changes nothing and is no error.
func (s *Service) RevokeDevice(ctx context.Context, deviceID string, by Principal) error {
	err := s.inTx(ctx, "revoke device", func(tx *sql.Tx) error {
		var owner string
		var revoked sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT user_id, revoked_at FROM devices WHERE id = ?`, deviceID).Scan(&owner, &revoked)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != by.UserID && !by.IsAdmin()) {
			return errDeviceNotFound
		} else if err != nil {
			return err
		}
		if revoked.Valid {
			return nil
		}
		return s.revokeDeviceTx(ctx, tx, deviceID, owner, by, "")
	})
	if err != nil {
		return err
	}
	s.markRevoked(deviceID)
	return nil
}

// revokeDeviceTx marks the device and its refresh tokens revoked and audits
// it with reason (empty for a plain revocation).
func (s *Service) revokeDeviceTx(ctx context.Context, tx *sql.Tx, deviceID, owner string, by Principal, reason string) error {
	now := formatTime(s.now())
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL`, now, by.Username, deviceID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL`, now, deviceID); err != nil {
		return err
	}
	e := entry(ctx, by, audit.ActionDeviceRevoke)
	e.TargetKind, e.TargetID = "device", deviceID
	detail := map[string]string{"owner": owner}
	if reason != "" {
		detail["reason"] = reason
	}
	e.Detail = audit.Detail(detail)
	return s.audit.LogTx(ctx, tx, e)
}

// revokeUserDevicesTx revokes every unrevoked device of user id and returns
// their ids.
func (s *Service) revokeUserDevicesTx(ctx context.Context, tx *sql.Tx, userID string, by Principal) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM devices WHERE user_id = ? AND revoked_at IS NULL`, userID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := s.revokeDeviceTx(ctx, tx, id, userID, by, "user disabled"); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// IsRevoked reports whether device id is revoked, from memory.
func (s *Service) IsRevoked(id string) bool {
	s.revokedMu.RLock()
	_, ok := s.revoked[id]
	s.revokedMu.RUnlock()
	return ok
}

func (s *Service) markRevoked(ids ...string) {
	s.revokedMu.Lock()
	for _, id := range ids {
		s.revoked[id] = struct{}{}
	}
	s.revokedMu.Unlock()
}

// loadRevoked adds every revoked device of the database to the in-memory set.
func (s *Service) loadRevoked(ctx context.Context) error {
	rows, err := s.db.Reader.QueryContext(ctx, `SELECT id FROM devices WHERE revoked_at IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("load revoked devices: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("load revoked devices: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load revoked devices: %w", err)
	}
	s.markRevoked(ids...)
	return nil
}

type seenUpdate struct {
	device string
	at     time.Time
}

// touch queues a last_seen update for device, at most once a minute per
// device. When the queue is full the update is skipped: last_seen is a hint.
func (s *Service) touch(device string) {
	now := s.now()
	s.seenMu.Lock()
	last, ok := s.seen[device]
	if ok && now.Sub(last) < lastSeenEvery && !now.Before(last) {
		s.seenMu.Unlock()
		return
	}
	s.seen[device] = now
	s.seenMu.Unlock()
	select {
	case s.seenCh <- seenUpdate{device: device, at: now}:
	default:
		s.seenMu.Lock()
		delete(s.seen, device)
		s.seenMu.Unlock()
	}
}

// writeLastSeen writes queued last_seen updates in batches until Close,
// then writes what is left.
func (s *Service) writeLastSeen() {
	defer s.wg.Done()
	for {
		select {
		case u := <-s.seenCh:
			s.flushSeen(u)
		case <-s.stop:
			for {
				select {
				case u := <-s.seenCh:
					s.flushSeen(u)
				default:
					return
				}
			}
		}
	}
}

func (s *Service) flushSeen(first seenUpdate) {
	batch := []seenUpdate{first}
	for len(batch) < 256 {
		select {
		case u := <-s.seenCh:
			batch = append(batch, u)
			continue
		default:
		}
		break
	}
	err := s.inTx(context.Background(), "write last_seen", func(tx *sql.Tx) error {
		for _, u := range batch {
			at := formatTime(u.at)
			if _, err := tx.Exec(`UPDATE devices SET last_seen = ? WHERE id = ? AND last_seen < ?`, at, u.device, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("auth last_seen", "count", len(batch), "err", err)
	}
}
