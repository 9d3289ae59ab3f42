-- Migration 0006 (issue 17 item 3, decision 0112): which build of a run date's gold the warehouse
-- holds, so that publish can apply the latest state's change sets taken against it.
CREATE TABLE published_build (
	run_date DATE NOT NULL, 
	build_id VARCHAR(32) NOT NULL, 
	published_at DATETIME NOT NULL, 
	PRIMARY KEY (run_date)
);
