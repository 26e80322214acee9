# One image for web, worker and beat (docker-compose.yml chooses the command).
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN DEBUG=true SECRET_KEY=build-only python manage.py collectstatic --noinput -v 0
RUN useradd --system --home /app cc && mkdir -p /app/var /app/media && chown -R cc /app/var /app/media
USER cc
EXPOSE 8000
CMD ["uvicorn", "commandcenter.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--ws", "websockets-sansio", "--proxy-headers"]
