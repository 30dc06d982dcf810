# Puma in cluster mode, as on Heroku: WEB_CONCURRENCY workers of
# RAILS_MAX_THREADS threads, on $PORT.
threads_count = Integer(ENV.fetch("RAILS_MAX_THREADS", 2))
threads threads_count, threads_count
workers Integer(ENV.fetch("WEB_CONCURRENCY", 2))
port ENV.fetch("PORT", 3000)
environment ENV.fetch("RAILS_ENV", "production")

# Puma 5 preloads in cluster mode by default; PRELOAD_APP=false boots each
# worker on its own (each then loads the app, and is cold, separately).
preload_app! ENV.fetch("PRELOAD_APP", "true") != "false"

# Each worker needs its own database connections.
on_worker_boot do
  ActiveRecord::Base.establish_connection if defined?(ActiveRecord::Base)
end
