"""The bot's features, one cog per module, loaded as extensions by bot.app."""
