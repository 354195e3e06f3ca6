"""The zstd dictionary event bodies are compressed with (``callhook.core.stored_body``).

Version 1: the ``data`` of one sample of every event of the catalog as it stood when it was
made (issue 16), concatenated: the key names and value shapes a body's ``data`` shares with
others, so a 400-byte ``data`` compresses to about 160. **Never change these bytes**: stored
bodies can only be read back with the dictionary they were compressed with (a test pins its
SHA-256). A better dictionary is a new version with its own marker byte.
"""

from __future__ import annotations

from typing import Final

# fmt: off
DICTIONARY_V1: Final = (
    b'{"call_id":"call_01KDVDN1RAV3RS3DTR98H6BCFN","direction":"inbound","caller":"+4477009001'
    b'20","callee":"+14155550100","did":"+14155550100","line":"Sales","started_at":"2025-12-31'
    b'T23:59:51.562Z","answered_at":"2026-01-01T00:00:00.000Z","ring_duration":8,"leg_id":"leg'
    b'_01KDVDN2S1303KBFWS5Q4YKHGP","answered_by":{"extension":"104","user_id":"usr_4822","user'
    b'_name":"Tom Becker"}}'
    b'{"call_id":"call_01KDVDJN11V3RS3DTR98H6BCFN","direction":"inbound","caller":"+4477009001'
    b'20","callee":"+14155550100","did":"+14155550100","line":"Sales","started_at":"2025-12-31'
    b'T23:58:32.993Z","answered_at":"2025-12-31T23:58:41.431Z","ended_at":"2026-01-01T00:00:00'
    b'.000Z","ring_duration":8,"talk_duration":79,"disposition":"answered","answered_by":{"ext'
    b'ension":"104","user_id":"usr_4822","user_name":"Tom Becker"},"recording_url":"https://fi'
    b'les.example.com/recordings/call_01KDVDJN11V3RS3DTR98H6BCFN.mp3"}'
    b'{"call_id":"call_01KDVDN8NESNGXHWBAVY8VEP2A","direction":"inbound","caller":"+4477009001'
    b'20","callee":"+14155550100","did":"+14155550100","line":"Sales","started_at":"2025-12-31'
    b'T23:59:58.638Z","leg_id":"leg_01KDVDN9B3FKJ1G1SEHGTVZ69D","member":{"extension":"104","u'
    b'ser_id":"usr_4822","user_name":"Tom Becker"},"position":1,"ringing_at":"2025-12-31T23:59'
    b':59.331Z","ended_at":"2026-01-01T00:00:00.000Z","ring_duration":1,"talk_duration":0,"dis'
    b'position":"busy"}'
    b'{"call_id":"call_01KDVDNA00V3RS3DTR98H6BCFN","direction":"inbound","caller":"+4477009001'
    b'20","callee":"+14155550100","did":"+14155550100","line":"Sales","started_at":"2026-01-01'
    b'T00:00:00.000Z"}'
    b'{"call_id":"call_01KDVDN9ABSNGXHWBAVY8VEP2A","direction":"inbound","caller":"+4477009001'
    b'20","callee":"+14155550100","did":"+14155550100","line":"Sales","started_at":"2025-12-31'
    b'T23:59:59.307Z","leg_id":"leg_01KDVDNA00FKJ1G1SEHGTVZ69D","member":{"extension":"104","u'
    b'ser_id":"usr_4822","user_name":"Tom Becker"},"position":1,"ringing_at":"2026-01-01T00:00'
    b':00.000Z"}'
    b'{"call_id":"call_01KDVDMWW1V3RS3DTR98H6BCFN","direction":"outbound","caller":"+141555501'
    b'00","callee":"+447700900120","did":"+14155550100","line":"Sales","started_at":"2025-12-3'
    b'1T23:59:46.561Z","user":{"extension":"107","user_id":"usr_4933","user_name":"Emma Larsen'
    b'"},"answered_at":"2026-01-01T00:00:00.000Z","ring_duration":13}'
    b'{"call_id":"call_01KDVDM0H1V3RS3DTR98H6BCFN","direction":"outbound","caller":"+141555501'
    b'00","callee":"+447700900120","did":"+14155550100","line":"Sales","started_at":"2025-12-3'
    b'1T23:59:17.537Z","user":{"extension":"107","user_id":"usr_4933","user_name":"Emma Larsen'
    b'"},"answered_at":"2025-12-31T23:59:30.976Z","ended_at":"2026-01-01T00:00:00.000Z","ring_'
    b'duration":13,"talk_duration":29,"disposition":"answered","recording_url":"https://files.'
    b'example.com/recordings/call_01KDVDM0H1V3RS3DTR98H6BCFN.mp3"}'
    b'{"call_id":"call_01KDVDNA00V3RS3DTR98H6BCFN","direction":"outbound","caller":"+141555501'
    b'00","callee":"+447700900120","did":"+14155550100","line":"Sales","started_at":"2026-01-0'
    b'1T00:00:00.000Z","user":{"extension":"107","user_id":"usr_4933","user_name":"Emma Larsen'
    b'"}}'
    b'{"call_id":"call_01KDVDH35EV3RS3DTR98H6BCFN","rating_id":"rat_01KDVDNA00YF37BA4JJK1CTY4T'
    b'","mos":3.78,"jitter_ms":9.4,"packet_loss_pct":1.69,"score":63,"rated_at":"2026-01-01T00'
    b':00:00.000Z"}'
    b'{"message_id":"sms_01KDVDNA00C4QADKPC3DWEA431","direction":"inbound","from":"+1415555011'
    b'5","to":"+14155550101","text":"Can I move tomorrow\'s appointment to 3pm?","sent_at":"202'
    b'6-01-01T00:00:00.000Z"}'
    b'{"call_id":"call_01KDVDHA6JV3RS3DTR98H6BCFN","transcript_id":"tr_01KDVDNA00GW90EVSQGYWX2'
    b'YF0","language":"en-US","segments":[{"speaker":"agent","start":1.84,"end":3.27,"text":"N'
    b'orthwind sales, Tom here."},{"speaker":"customer","start":4.26,"end":9.24,"text":"We\'re '
    b'a team of twenty and looking at your business phone plans."},{"speaker":"agent","start":'
    b'10.35,"end":13.75,"text":"The Business plan fits that size; it includes call recording."'
    b'},{"speaker":"customer","start":14.99,"end":17.71,"text":"Does it include transcription '
    b'and summaries too?"},{"speaker":"agent","start":18.04,"end":21.17,"text":"Yes, both. I c'
    b'an send you a quote today."},{"speaker":"customer","start":21.4,"end":24.98,"text":"Plea'
    b'se do, and we\'d like a demo next week."}],"completed_at":"2026-01-01T00:00:00.000Z"}'
    b'{"call_id":"call_01KDVDH62TV3RS3DTR98H6BCFN","summary_id":"sum_01KDVDNA00FVPZ0V9ZXXR1JSN'
    b'0","text":"A prospect with a team of twenty asked about business plans, including transc'
    b'ription and summaries. The agent will send a quote and schedule a demo.","sentiment":"po'
    b'sitive","generated_at":"2026-01-01T00:00:00.000Z","action_items":["Send quote for 20 sea'
    b'ts","Schedule a demo next week"]}'
    b'{"call_id":"call_01KDVDERRCV3RS3DTR98H6BCFN","update_id":"tag_01KDVDNA00MHPYR54CPJ777JJ7'
    b'","tags":["sales","lead","open"],"added":["sales","lead","open"],"removed":[],"updated_b'
    b'y":{"extension":"104","user_id":"usr_4822","user_name":"Tom Becker"},"updated_at":"2026-'
    b'01-01T00:00:00.000Z"}'
    b'{"call_id":"call_01KDVDKABSV3RS3DTR98H6BCFN","voicemail_id":"vm_01KDVDNA00W6CF0V0M9815PG'
    b'9Z","caller":"+447700900120","callee":"+14155550100","mailbox":"104","audio_url":"https:'
    b'//files.example.com/voicemail/vm_01KDVDNA00W6CF0V0M9815PG9Z.mp3","duration":25,"transcri'
    b'ption":"Hello, we\'re interested in your business plans for about twenty people.","record'
    b'ed_at":"2025-12-31T23:59:21.331Z"}'
)
# fmt: on
SHA256_V1: Final = "d5316cc0807de097c6feb2fd5aeef8e56a5d0dfc4801d49b164f3376a9fd8662"
