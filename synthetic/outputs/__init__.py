"""What a run writes for people and other tools besides results.json: the
summary table, JUnit properties, the GitHub job summary and Nagios line
(`formats`), and the Allure report with its masking."""
