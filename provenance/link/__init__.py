"""Link: LSH candidates, verification on exact sets, clusters without chaining (``stage.link_stage``)."""
