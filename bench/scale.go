package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The scale mode (--scale) measures how lookups on one customer's personal
// fields grow with the customer: issue 12's table. One customer is grown by
// bulk writes to each size in turn (a tenant per protected identity), and
// at each size every lookup is made --repeat times, one at a time, with a
// different target each time; the table shows each lookup's median.

// scaleLookups are the lookups of the scale table, in its column order.
var scaleLookups = []string{"get", "ssn", "tenant", "last_name", "last_name__icontains", "first_name__istartswith", "_search"}

var scaleLookupDoc = map[string]string{
	"get":                     "GET by id",
	"ssn":                     "`?ssn=` (a number one identity holds)",
	"tenant":                  "`?tenant=`",
	"last_name":               "`?last_name=`",
	"last_name__icontains":    "`?last_name__icontains=`",
	"first_name__istartswith": "`?first_name__istartswith=`",
	"_search":                 "`_search` page of 20",
}

// scaleBudget bounds the time one lookup's repetitions take at one size:
// past it the median is of the repetitions made, so that a lookup that
// decrypts a million rows does not hold the run for an hour.
const scaleBudget = 60 * time.Second

// scaleSeeders are the bulk writers that grow the customer concurrently.
const scaleSeeders = 4

// syllables spell the synthetic names: five of them (20 bits) name each of
// up to 2^20 identities apart, so that a whole name matches one identity
// at every size.
var syllables = []string{"ka", "lo", "mi", "ne", "ri", "sa", "to", "vu", "be", "da", "fe", "gi", "ho", "ju", "ly", "py"}

// spell spells n's low 20 bits, scrambled so that neighbours differ in
// every syllable, as five syllables.
func spell(n int) string {
	x := uint32(n) * 0x9E3B5 & (1<<20 - 1) // odd multiplier: a bijection on 20 bits
	var sb strings.Builder
	for range 5 {
		sb.WriteString(syllables[x&15])
		x >>= 4
	}
	return sb.String()
}

// scaleIdentity is the seeded identity i: its first name, last name and
// identity number (the first len(ssns) identities hold one test number
// each, the rest none, so that ?ssn= matches exactly one).
func scaleIdentity(i int) (first, last, ssn string) {
	f := spell(i + 1<<19)
	first = strings.ToUpper(f[:1]) + f[1:]
	last = surnames[i%len(surnames)] + spell(i)
	if i < len(ssns) {
		ssn = ssns[i]
	}
	return first, last, ssn
}

// scaleRow is one size's figures.
type scaleRow struct {
	Rows int `json:"rows"`
	// MedianMS is each lookup's median latency; Repeats how many were made.
	MedianMS map[string]float64 `json:"median_ms"`
	Repeats  map[string]int     `json:"repeats"`
	// Errors counts answers other than a 200 holding the target, by lookup
	// and status.
	Errors      map[string]int `json:"errors,omitempty"`
	PeakRSSMB   float64        `json:"peak_rss_mb"`
	SeedSeconds float64        `json:"seed_seconds"`
	SeedPeakMB  float64        `json:"seed_peak_rss_mb"`
}

// scaleRun is one engine's rows.
type scaleRun struct {
	Engine string     `json:"engine"`
	Rows   []scaleRow `json:"rows"`
}

// scaleCustomer is the grown customer: its identities' ids and tenants, by
// seeding index.
type scaleCustomer struct {
	*customer
	ids, tenants []string
}

// runScale grows one customer on a fresh database of one engine and
// measures the lookups at each size.
func runScale(s settings, sizes []int, repeat int, db, engine string, p pinning, log io.Writer) (sr scaleRun, err error) {
	r := &runner{}
	defer r.close()
	defer catch(&err)
	b := startBench(r, s, db, engine, p, log)
	c := &scaleCustomer{customer: b.newCustomer("Bench Scale AB")}
	sr.Engine = engine
	for _, size := range sizes {
		if err := b.srv.ResetPeakRSS(); err != nil {
			return sr, err
		}
		start := time.Now()
		b.grow(c, size)
		row := scaleRow{Rows: size, SeedSeconds: time.Since(start).Seconds(),
			MedianMS: map[string]float64{}, Repeats: map[string]int{}, Errors: map[string]int{}}
		row.SeedPeakMB = b.peakMB()
		fmt.Fprintf(log, "bench: %s: %d identities seeded in %.0f s\n", engine, size, row.SeedSeconds)
		if err := b.srv.ResetPeakRSS(); err != nil {
			return sr, err
		}
		for _, lookup := range scaleLookups {
			var latencies []time.Duration
			began := time.Now()
			for len(latencies) < repeat && time.Since(began) < scaleBudget {
				d, failure := b.lookup(c, lookup, rand.IntN(len(c.ids)))
				if failure != "" {
					row.Errors[lookup+" "+failure]++
					continue
				}
				latencies = append(latencies, d)
			}
			slices.Sort(latencies)
			row.Repeats[lookup] = len(latencies)
			if len(latencies) > 0 {
				row.MedianMS[lookup] = ms(latencies[len(latencies)/2])
			}
			fmt.Fprintf(log, "bench: %s: %d rows: %s median %.2f ms (%d made)\n", engine, size, lookup, row.MedianMS[lookup], len(latencies))
		}
		row.PeakRSSMB = b.peakMB()
		sr.Rows = append(sr.Rows, row)
	}
	if err := b.srv.Stop(); err != nil {
		return sr, fmt.Errorf("serve did not exit cleanly: %v\n%s", err, b.srv.Log())
	}
	return sr, nil
}

// grow adds identities (each with a tenant of its own) until c has size,
// with scaleSeeders bulk writers at once.
func (b *bench) grow(c *scaleCustomer, size int) {
	from := len(c.ids)
	if size <= from {
		return
	}
	batches := make(chan int)
	go func() {
		for start := from; start < size; start += bulkItems {
			batches <- start
		}
		close(batches)
	}()
	ids, tenants := make([]string, size-from), make([]string, size-from)
	// A seeder's Fatal (a panic) is carried back to this goroutine, whose
	// caller recovers it; the seeder drains the batches so the feeder ends.
	var failed atomic.Pointer[fatal]
	var wg sync.WaitGroup
	for range scaleSeeders {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					f, ok := p.(fatal)
					if !ok {
						panic(p)
					}
					failed.CompareAndSwap(nil, &f)
					for range batches {
					}
				}
			}()
			for start := range batches {
				n := min(bulkItems, size-start)
				ts := b.bulkWrite(c.customer, tenantPath, b.tenantBatch("Skala", n))
				items := make([]map[string]any, n)
				for k := range items {
					first, last, ssn := scaleIdentity(start + k)
					item := map[string]any{"tenant": map[string]any{"id": ts[k]}, "first_name": first, "last_name": last,
						"email": fmt.Sprintf("skala%07d@example.se", start+k)}
					if ssn != "" {
						item["ssn"] = ssn
					}
					items[k] = item
				}
				body, _ := json.Marshal(items)
				created := b.bulkWrite(c.customer, piPath, body)
				copy(ids[start-from:], created)
				copy(tenants[start-from:], ts)
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		panic(*f)
	}
	c.ids, c.tenants = append(c.ids, ids...), append(c.tenants, tenants...)
}

// lookup makes one lookup aimed at identity i and returns its latency, or
// what was wrong with its answer: not a 200, or a list that does not hold
// identity i (the _search page: not 20 objects).
func (b *bench) lookup(c *scaleCustomer, lookup string, i int) (time.Duration, string) {
	first, last, _ := scaleIdentity(i)
	var path string
	switch lookup {
	case "get":
		path = piPath + c.ids[i] + "/"
	case "ssn":
		i %= len(ssns)
		path = piPath + "list/?ssn=" + ssns[i]
	case "tenant":
		path = piPath + "list/?tenant=" + c.tenants[i]
	case "last_name":
		path = piPath + "list/?last_name=" + url.QueryEscape(last)
	case "last_name__icontains":
		path = piPath + "list/?last_name__icontains=" + url.QueryEscape(strings.ToUpper(spell(i)))
	case "first_name__istartswith":
		path = piPath + "list/?first_name__istartswith=" + url.QueryEscape(strings.ToLower(first[:9]))
	case "_search":
		path = piPath + "list/?_search=berg&_page=1&_page_size=20"
	}
	start := time.Now()
	resp, err := b.hc.Do(b.request(c.customer, "GET", path, nil))
	if err != nil {
		return 0, "transport"
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	d := time.Since(start)
	if err != nil {
		return 0, "transport"
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Sprint(resp.StatusCode)
	}
	if lookup == "get" {
		return d, ""
	}
	var objects []struct{ ID string }
	if json.Unmarshal(body, &objects) != nil {
		return 0, "body"
	}
	if lookup == "_search" {
		if len(objects) != 20 {
			return 0, "short page"
		}
		return d, ""
	}
	if !slices.ContainsFunc(objects, func(o struct{ ID string }) bool { return o.ID == c.ids[i] }) {
		return 0, "target missing"
	}
	return d, ""
}

// scaleMarkdown is the scale mode's tables, one per engine.
func scaleMarkdown(runs []scaleRun) string {
	var sb strings.Builder
	for _, sr := range runs {
		fmt.Fprintf(&sb, "\n### %s\n\n| rows |", sr.Engine)
		for _, l := range scaleLookups {
			fmt.Fprintf(&sb, " %s |", scaleLookupDoc[l])
		}
		sb.WriteString(" peak RSS, lookups | seeding (peak RSS) | errors |\n|---:|")
		for range scaleLookups {
			sb.WriteString("---:|")
		}
		sb.WriteString("---:|---:|---|\n")
		for _, row := range sr.Rows {
			fmt.Fprintf(&sb, "| %d |", row.Rows)
			for _, l := range scaleLookups {
				if row.Repeats[l] == 0 {
					sb.WriteString(" — |")
				} else {
					fmt.Fprintf(&sb, " %s ms (%d) |", figure(row.MedianMS[l]), row.Repeats[l])
				}
			}
			fmt.Fprintf(&sb, " %.0f MB | %.1f s (%.0f MB) | %s |\n", row.PeakRSSMB, row.SeedSeconds, row.SeedPeakMB, errorsCell(row.Errors))
		}
	}
	return sb.String()
}
