#!/usr/bin/env bash
# `make demo`: a real campaign end to end on the embedded default (SQLite under var/demo/ and a
# local SMTP sink). Regenerates the demo data set each time so the demo always starts clean.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
DEMO=var/demo
CAMPAIGN=maintenance-notice
AS_OF=2026-12-01
SINK_PORT="${SWMAIL_DEMO_SINK_PORT:-2525}"

export SWMAIL_DATABASE_URL="sqlite:///$DEMO/swmail.sqlite3"
export SWMAIL_DATABASE_LEDGER_URL=""
export SWMAIL_SMTP_HOST=127.0.0.1
export SWMAIL_SMTP_PORT="$SINK_PORT"
export SWMAIL_SMTP_SECURITY=none
export SWMAIL_SMTP_USERNAME=""

swmail() { "$BIN/python" run_campaign.py "$@"; }

rm -rf "$DEMO"
mkdir -p "$DEMO"

echo "== 1. demo data: a few thousand customers with every edge case of SPEC §4"
"$BIN/python" -m tools.demo_data "$DEMO/data" --customers 3000

echo "== 2. database: create the tables and import the CSV files"
swmail db init
swmail db import "$DEMO/data"

echo "== 3. who would receive it, and why"
swmail resolve --campaign "$CAMPAIGN" --as-of "$AS_OF"

echo "== 4. dry run: audit.csv, warnings.csv and every message, nothing sent"
swmail dry-run --campaign "$CAMPAIGN" --as-of "$AS_OF" --out "$DEMO/dry-run"

echo "== 5. explain one decision"
first_merged=$(awk -F, '$3=="merged" {print $11; exit}' "$DEMO/dry-run/audit.csv")
if [ -n "$first_merged" ]; then
    swmail explain --campaign "$CAMPAIGN" --as-of "$AS_OF" --email "$first_merged"
    echo "== 5b. the same for the 事務局, in Japanese (--lang ja; or [ui] language, or LANG=ja_JP.UTF-8)"
    swmail --lang ja explain --campaign "$CAMPAIGN" --as-of "$AS_OF" --email "$first_merged"
fi

echo "== 6. send for real into a local SMTP sink (Maildir under $DEMO/maildir)"
"$BIN/python" -m tools.sink --host 127.0.0.1 --port "$SINK_PORT" --maildir "$DEMO/maildir" \
    > "$DEMO/sink.log" 2>&1 &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    grep -q "listening" "$DEMO/sink.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening" "$DEMO/sink.log" || { echo "the SMTP sink did not start:"; cat "$DEMO/sink.log"; exit 1; }

swmail run --campaign "$CAMPAIGN" --as-of "$AS_OF"

echo "== 7. run again: resumes, sends nothing twice"
swmail run --campaign "$CAMPAIGN" --as-of "$AS_OF"

echo "== 8. status and the audit export"
swmail status --run "$CAMPAIGN/$AS_OF"
swmail audit export --run "$CAMPAIGN/$AS_OF" --out "$DEMO/audit-sent.csv"

echo "== 9. the nightly job over config/campaigns/ on a replayed clock (2026-12-01 09:30 JST)"
# billing-notice is due (cron 09:00 on the 1st); maintenance-2026-12 needs an approval first
NOW=2026-12-01T09:30:00+09:00
swmail nightly --now "$NOW" || echo "(nightly exit $?)"
swmail approve --campaign maintenance-2026-12 --run-key "$AS_OF" --as-of "$AS_OF" | tail -1
swmail nightly --now 2026-12-01T09:45:00+09:00 || echo "(nightly exit $?)"
swmail report --run "billing-notice/$AS_OF" --out "$DEMO/report-billing-notice.html"

echo
echo "Demo finished. Look at:"
echo "  dry run:        $DEMO/dry-run/ (audit.csv, warnings.csv, messages/*.eml)"
echo "  sent messages:  $DEMO/maildir/new/ ($(ls "$DEMO/maildir/new" | wc -l) files)"
echo "  audit after run: $DEMO/audit-sent.csv"
echo "  morning report: $DEMO/report-billing-notice.html"
