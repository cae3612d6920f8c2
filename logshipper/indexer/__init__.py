"""The Kafka -> Elasticsearch indexer (`hostwatch index`): a consumer group member that bulk-indexes
the shipper's ECS records, commits offsets only after their bulk succeeded or was dead-lettered."""
