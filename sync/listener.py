"""The HL7 v2 MLLP listener (asyncio): one acknowledgement per message, never a crash.

A message is stored (an Appointment, `sync.actions.receive_message`) before its AA, so
an acknowledged message is never lost; the priors' lookup and the migration run later in
a Celery task. A message that cannot be taken gets AE/AR with the reason; one that
cannot be stored (the database is down) gets AE, so the sender sends it again. Logs
name the message type, its control id and the reason, never a patient.
"""

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from sync import hl7msg

log = logging.getLogger(__name__)
END = hl7msg.EB + hl7msg.CR


def answer(data, sender=""):
    """The ACK text for one MLLP block's payload (bytes). The database connection is
    closed after each message: messages are minutes apart, and a listener idle for hours
    must not hold a connection (or find it dead)."""
    try:
        return _answer(data, sender)
    finally:
        connection.close()


def _answer(data, sender):
    text = _decode(data)
    try:
        parsed = hl7msg.parse(text)
    except hl7msg.RefusedError as refused:
        log.warning("hl7: refused %s (%s): %s", refused.control_id or "-", refused.code,
                    refused.reason)  # fmt: skip
        return hl7msg.ack(refused.code, refused.control_id, refused.reason, refused.header)
    except Exception as exc:  # an odd message must not end the listener
        log.warning("hl7: unreadable message (%s)", type(exc).__name__)
        return hl7msg.ack("AR", "", "the message could not be read")
    header = hl7msg.header_of(hl7msg.Message(text))
    try:
        from sync import actions

        close_old_connections()
        actions.receive_message(parsed, text, sender)
    except Exception as exc:
        log.error("hl7: could not store %s %s (%s)", parsed.message_type, parsed.control_id,
                  type(exc).__name__)  # fmt: skip
        return hl7msg.ack("AE", parsed.control_id, "the message could not be stored; send again",
                          header)  # fmt: skip
    return hl7msg.ack("AA", parsed.control_id, header=header)


def _decode(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class Listener:
    """`await Listener(host, port).start()`; `.port` is the bound port (0 picks one)."""

    def __init__(self, host=None, port=None, max_bytes=None):
        self.host = host or settings.HL7_HOST
        self.port = settings.HL7_PORT if port is None else port
        self.max_bytes = max_bytes or settings.HL7_MAX_BYTES
        self.server = None
        self.answer = sync_to_async(answer, thread_sensitive=True)

    async def start(self):
        self.server = await asyncio.start_server(
            self._client, self.host, self.port, limit=self.max_bytes + 16
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def serve_forever(self):
        if self.server is None:
            await self.start()
        async with self.server:
            await self.server.serve_forever()

    async def close(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _client(self, reader, writer):
        peer = writer.get_extra_info("peername")
        sender = f"{peer[0]}:{peer[1]}" if peer else ""
        try:
            while True:
                try:
                    block = await reader.readuntil(END)
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    writer.write(hl7msg.frame(hl7msg.ack("AR", "", "the message is too large")))
                    await writer.drain()
                    return
                payload = block[block.find(hl7msg.SB) + 1 : -2] if hl7msg.SB in block else block
                ack = await self.answer(payload, sender)
                writer.write(hl7msg.frame(ack))
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            log.info("hl7: connection from %s ended (%s)", sender, type(exc).__name__)
        except Exception:
            log.exception("hl7: connection handler failed")
        finally:
            writer.close()
