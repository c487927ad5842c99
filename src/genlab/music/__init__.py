"""Music formats: ABC/MusicXML to notes, notes to MIDI, notes to audio."""
