package sim

import (
	"strconv"
	"time"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/rabbit"
)

// badSample is how an injected sample breaks the contract.
type badSample uint8

const (
	badNone   badSample = iota
	badSoC              // SoC outside 0..100
	badNumber           // NaN
	badUnit             // a Voltage unit the contract does not list
	badMode             // a mode the contract does not list
	badTime             // unparseable (gen 2) or before 2015 (gen 1)
	numBadSamples
)

// badSample returns an extra sample for s's unit that a decoder must reject
// (its time is half a cadence after s, so it never shadows a good reading).
func (f *Fleet) badSample(u *unit, s sample) sample {
	b := s
	b.seq = s.seq // a resent seq, as confused firmware does
	b.ms = s.ms + f.cfg.Cadence.Milliseconds()/2
	b.alarms = nil
	b.bad = badSample(1 + f.rng.IntN(int(numBadSamples)-1))
	return b
}

// Kinds of whole-message breakage, as the summary and the sim_bad header
// name them.
var badKinds = []string{"truncated", "unknown-namespace", "no-unit", "dtd", "encoding", "rejected-reading"}

// badMessage returns an extra message based on u's reading s that breaks
// the contract. Most are rejected whole; "rejected-reading" is a gen-1
// message whose only reading is rejected.
func (f *Fleet) badMessage(u *unit, s sample) Message {
	kind := badKinds[f.rng.IntN(len(badKinds))]
	s.ms += f.cfg.Cadence.Milliseconds() / 2
	s.alarms = nil
	var body []byte
	gen := u.gen
	samples, rejected := 1, 0
	switch kind {
	case "truncated":
		var full []byte
		if u.gen == 1 {
			full = appendGen1(nil, u, &s)
		} else {
			full = appendGen2(nil, u, []sample{s})
		}
		body = full[:len(full)*2/3]
	case "unknown-namespace":
		body = []byte(`<bsu:Telemetry xmlns:bsu="urn:flexipack:telemetry:9" schemaVersion="9.0"><bsu:Unit serial="` + u.id + `"/><bsu:Sample seq="1" time="` + time.UnixMilli(s.ms).UTC().Format(time.RFC3339) + `"><bsu:SoC>50</bsu:SoC></bsu:Sample></bsu:Telemetry>`)
		gen = 0
	case "no-unit":
		body = []byte(`<telemetry schema="1.0"><reading ts="` + strconv.FormatInt(s.ms, 10) + `" seq="1"><soc>50.0</soc></reading></telemetry>`)
		gen = 1
	case "dtd":
		body = []byte(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><telemetry schema="1.0"><unit id="` + u.id + `"/><reading ts="` + strconv.FormatInt(s.ms, 10) + `"><soc>&lol2;</soc></reading></telemetry>`)
		gen = 1
	case "encoding":
		body = append([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?>`), appendGen1(nil, u, &s)...)
		gen = 1
	case "rejected-reading":
		s.bad = badSample(1 + f.rng.IntN(int(numBadSamples)-1))
		if s.bad == badUnit {
			s.bad = badSoC // generation 1 has no units to get wrong
		}
		gen = 1
		gu := *u
		gu.gen = 1
		body = appendGen1(nil, &gu, &s)
		rejected = 1
	}
	u.msgs++
	m := Message{
		Message: bus.Message{
			ID:         u.id + ":bad:" + strconv.FormatInt(u.msgs, 10),
			Key:        u.id,
			RoutingKey: rabbit.RoutingKey(max(gen, 1), u.id),
			Headers: map[string]string{
				bus.HeaderUnit:       u.id,
				bus.HeaderGeneration: strconv.Itoa(max(gen, 1)),
				bus.HeaderSamples:    strconv.Itoa(samples),
				bus.HeaderSource:     "simulate",
				"sim_bad":            kind,
			},
			Body: body,
		},
		Generation: gen,
		Samples:    samples,
		Rejected:   rejected,
	}
	if kind != "rejected-reading" {
		m.Bad = kind
	}
	if kind == "no-unit" {
		m.Headers[bus.HeaderUnit] = ""
	}
	return m
}
