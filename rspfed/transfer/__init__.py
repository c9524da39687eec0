"""Device-to-device pairing and transfer (issue G): short codes, secure channel, pairing protocol."""
